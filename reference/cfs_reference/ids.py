"""Resource ids in the vendor's formats (docs examples: cfs-11111111, pgroup-doxpcqh, FSID z3r6k95r)."""

from __future__ import annotations

import secrets
import string
from collections.abc import Container

ALPHABET = string.ascii_lowercase + string.digits

FILE_SYSTEM = "cfs-"
PERMISSION_GROUP = "pgroup-"
RULE = "rule-"
SNAPSHOT = "cfssnap-"
POLICY = "asp-"
DEFAULT_PGROUP_ID = "pgroupbasic"


def random_suffix(length: int = 8) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def new_id(prefix: str, taken: Container[str]) -> str:
    """A fresh id `prefix` + 8 lowercase alphanumerics that is not in `taken`."""
    while True:
        candidate = prefix + random_suffix()
        if candidate not in taken:
            return candidate


def new_fsid(taken: Container[str]) -> str:
    """The FSID used as the NFSv3 export path (/z3r6k95r in the docs' mount examples)."""
    while True:
        candidate = random_suffix()
        if candidate not in taken:
            return candidate
