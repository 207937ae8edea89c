"""Hands the desired NFS exports to the data plane on a worker thread.

The API must not wait for ganesha: `submit()` only records the latest desired state; the
worker applies it (skipping states already applied). Failures are logged and retried on the
next submit.
"""

from __future__ import annotations

import logging
import threading

from cfs_reference.nfs import DataPlane, ExportSpec

log = logging.getLogger(__name__)


class ExportSync:
    def __init__(self, data_plane: DataPlane):
        self.data_plane = data_plane
        self._wanted: list[ExportSpec] | None = None
        self._applied: list[ExportSpec] | None = None
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="nfs-exports", daemon=True)

    def start(self) -> None:
        self.data_plane.start()
        self._thread.start()

    def submit(self, specs: list[ExportSpec]) -> None:
        with self._cond:
            if specs == self._wanted:
                return
            self._wanted = specs
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.data_plane.stop()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stopping or self._wanted != self._applied)
                if self._stopping:
                    return
                wanted = self._wanted
            try:
                self.data_plane.apply(list(wanted or []))
            except Exception:  # the data plane must not take the API down; retry on next change
                log.exception("applying %d NFS exports failed", len(wanted or []))
                with self._cond:
                    self._cond.wait(timeout=1.0)
                continue
            with self._cond:
                self._applied = wanted
