"""Credential providers for the SDK: fixed values, or files in a mounted Secret directory.

Both implement the SDK's credential protocol (`get_credential_info()` -> id, key, token), which
the SDK calls once per request while signing, so a rotated Secret is picked up on the next call.
Neither ever shows the key or token in its repr.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from cfs_cloud.errors import CfsAuthError

SECRET_ID_FILE = "secretId"
SECRET_KEY_FILE = "secretKey"
SESSION_TOKEN_FILE = "sessionToken"


class StaticCredentials:
    """Credentials fixed for the lifetime of the provider (env variables, CSI request secrets)."""

    def __init__(self, secret_id: str, secret_key: str, session_token: str | None = None):
        secret_id, secret_key = secret_id.strip(), secret_key.strip()
        if not secret_id or not secret_key:
            raise CfsAuthError(
                "AuthFailure.MissingCredentials", "SecretId and SecretKey must both be non-empty"
            )
        self._info = (secret_id, secret_key, (session_token or "").strip() or None)

    def get_credential_info(self) -> tuple[str, str, str | None]:
        return self._info

    @property
    def secret_id(self) -> str:
        return self._info[0]

    def __repr__(self) -> str:
        return f"StaticCredentials(secret_id={self.secret_id!r})"


class FileCredentials:
    """Credentials read from `secretId`, `secretKey` and optional `sessionToken` files.

    The files are re-read whenever one of them changes (inode, size or mtime; a Kubernetes
    Secret volume swaps a symlink, which changes the inode). The check costs three `stat` calls
    per request. While a rotation is half-written (a file missing or empty) the last complete
    pair stays in use. Unusable files or directory raise `CfsAuthError` naming the file.
    """

    def __init__(self, directory: str | os.PathLike[str]):
        self._dir = Path(directory)
        self._lock = threading.Lock()
        self._fingerprint: tuple[object, ...] | None = None
        self._info: tuple[str, str, str | None] | None = None
        self._problem = ""  # why the files last read gave no credentials

    def _stat_fingerprint(self) -> tuple[object, ...]:
        marks: list[object] = []
        for name in (SECRET_ID_FILE, SECRET_KEY_FILE, SESSION_TOKEN_FILE):
            try:
                st = os.stat(self._dir / name)
                marks.append((st.st_ino, st.st_size, st.st_mtime_ns))
            except OSError as exc:  # absent, or the directory itself is unusable
                marks.append(exc.errno)
        return tuple(marks)

    def _read_file(self, name: str) -> str:
        """The file's stripped text; "" when it does not exist (yet)."""
        try:
            return (self._dir / name).read_text().strip()
        except FileNotFoundError:
            return ""

    def _read(self) -> tuple[tuple[str, str, str | None] | None, str]:
        """(credentials, "") or (None, what is wrong) — the problem names the file."""
        try:
            secret_id, secret_key, token = (
                self._read_file(name) for name in (SECRET_ID_FILE, SECRET_KEY_FILE, SESSION_TOKEN_FILE)
            )
        except OSError as exc:
            return None, f"cannot read {exc.filename}: {exc.strerror}"
        missing = [
            name for name, value in ((SECRET_ID_FILE, secret_id), (SECRET_KEY_FILE, secret_key)) if not value
        ]
        if missing:
            return None, f"{' and '.join(missing)} missing or empty"
        return (secret_id, secret_key, token or None), ""

    def refresh(self) -> bool:
        """Re-read the files if they changed; True when the credentials changed."""
        fingerprint = self._stat_fingerprint()
        with self._lock:
            if fingerprint == self._fingerprint:
                return False
            info, self._problem = self._read()
            self._fingerprint = fingerprint
            if info is None or info == self._info:
                return False
            self._info = info
            return True

    def get_credential_info(self) -> tuple[str, str, str | None]:
        self.refresh()
        info = self._info
        if info is None:
            raise CfsAuthError(
                "AuthFailure.MissingCredentials",
                f"no credentials in {self._dir} ({self._problem}): files {SECRET_ID_FILE} and "
                f"{SECRET_KEY_FILE} must exist and be non-empty",
            )
        return info

    @property
    def secret_id(self) -> str | None:
        info = self._info
        return info[0] if info else None

    def __repr__(self) -> str:
        return f"FileCredentials(directory={str(self._dir)!r})"
