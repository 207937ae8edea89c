"""Durable state: one SQLite database in WAL mode, one row per resource (JSON body).

Every change is committed (and fsynced: synchronous=FULL) before the API acknowledges it, so a
`kill -9` loses nothing that was acknowledged. The backend keeps its working copy in memory
and writes through this store; the store is only read at start-up.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    kind TEXT NOT NULL,
    id   TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (kind, id)
)
"""


class Store:
    def __init__(self, path: Path):
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute(SCHEMA)
        self._lock = threading.Lock()

    def load(self) -> dict[str, dict[str, dict[str, Any]]]:
        """kind -> id -> body, in insertion order (rowid)."""
        loaded: dict[str, dict[str, dict[str, Any]]] = {}
        for kind, rid, body in self._conn.execute("SELECT kind, id, body FROM resources ORDER BY rowid"):
            loaded.setdefault(kind, {})[rid] = json.loads(body)
        return loaded

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Group several writes into one atomic, durable commit."""
        with self._lock:
            tx = Transaction()
            yield tx
            if not tx.writes:
                return
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for kind, rid, body in tx.writes:
                    if body is None:
                        self._conn.execute("DELETE FROM resources WHERE kind=? AND id=?", (kind, rid))
                    else:
                        self._conn.execute(
                            "INSERT INTO resources (kind, id, body) VALUES (?, ?, ?) "
                            "ON CONFLICT(kind, id) DO UPDATE SET body=excluded.body",
                            (kind, rid, json.dumps(body, ensure_ascii=False)),
                        )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        self._conn.close()


class Transaction:
    """Writes collected inside `Store.transaction()`; applied when the block ends without error."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, str, dict[str, Any] | None]] = []

    def put(self, kind: str, rid: str, body: dict[str, Any]) -> None:
        self.writes.append((kind, rid, dict(body)))

    def delete(self, kind: str, rid: str) -> None:
        self.writes.append((kind, rid, None))
