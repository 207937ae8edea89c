"""Finding the cloud object a resource manages: status id, adopted id, or none yet."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from cfs_operator.changes import ChangeLog
from cfs_operator.specs import SpecError

T = TypeVar("T")


def locate(
    describe: Callable[[str], T | None],
    *,
    known_id: str | None,
    adopt_id: str | None,
    adopted_before: bool,
    adopt_field: str,
    noun: str,
    log: ChangeLog,
) -> tuple[T | None, bool]:
    """(the managed cloud object or None when it must be created, whether it is adopted).

    The id in status wins; spec's adopt id names the object the first time. An adopted object
    that is gone can never come back (the spec is wrong); one we created is recreated.
    """
    if adopt_id and known_id and adopt_id != known_id:
        raise SpecError(
            adopt_field,
            f"cannot change from {known_id} to {adopt_id}; create a new resource to manage another {noun}",
        )
    adopted = bool(adopt_id) or adopted_before
    cloud_id = known_id or adopt_id
    found = describe(cloud_id) if cloud_id else None
    if cloud_id and found is None:
        if adopted:
            raise SpecError(adopt_field, f"{noun} {cloud_id} does not exist")
        log.add("Missing", f"{noun} {cloud_id} was deleted outside the operator; recreating")
    return found, adopted
