"""Finding the cloud object a resource manages (blocking cloud calls)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from cfs_cloud import CfsClient, CfsNotFound

from cfs_operator.changes import ChangeLog
from cfs_operator.specs import SpecError

T = TypeVar("T")


def find_one(client: CfsClient, action: str, params: dict[str, Any], items_key: str,
             match_key: str, value: str) -> dict[str, Any] | None:
    """The first item of ``reply[items_key]`` whose ``match_key`` is ``value``; None when absent.

    A filtered Describe may answer ResourceNotFound instead of an empty list: also None.
    """
    try:
        reply = client.call(action, params)
    except CfsNotFound:
        return None
    return next((raw for raw in reply.get(items_key) or () if raw.get(match_key) == value), None)


def locate(describe: Callable[[str], T | None], *, known_id: str | None, adopt_id: str | None,
           adopted_before: bool, adopt_field: str, noun: str, log: ChangeLog) -> tuple[T | None, bool]:
    """(the managed cloud object or None when it must be created, whether it is adopted).

    The id in status wins; spec's adopt id names the object the first time. An adopted object
    that is gone can never come back (the spec is wrong); one we created is recreated.
    """
    if adopt_id and known_id and adopt_id != known_id:
        raise SpecError(adopt_field, f"cannot change from {known_id} to {adopt_id}; "
                                     f"create a new resource to manage another {noun}")
    adopted = bool(adopt_id) or adopted_before
    cloud_id = known_id or adopt_id
    found = describe(cloud_id) if cloud_id else None
    if cloud_id and found is None:
        if adopted:
            raise SpecError(adopt_field, f"{noun} {cloud_id} does not exist")
        log.add("Missing", f"{noun} {cloud_id} was deleted outside the operator; recreating")
    return found, adopted
