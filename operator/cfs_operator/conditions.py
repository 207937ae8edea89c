"""Status conditions in the Kubernetes style (type, status, reason, message, lastTransitionTime)."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

READY = "Ready"
SYNCED = "Synced"
IN_USE = "InUse"


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool
    reason: str
    message: str


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def merge_conditions(
    current: Iterable[Mapping[str, Any]] | None,
    updates: Iterable[Condition],
    generation: int | None,
) -> list[dict[str, Any]]:
    """The condition list with ``updates`` applied.

    lastTransitionTime only moves when a condition's status flips, so it tells how long the
    resource has been Ready (or not) rather than when the operator last looked.
    """
    merged = {item["type"]: dict(item) for item in current or () if "type" in item}
    for update in updates:
        status = "True" if update.status else "False"
        previous = merged.get(update.type)
        changed = previous is None or previous.get("status") != status
        entry = {
            "type": update.type,
            "status": status,
            "reason": update.reason,
            "message": update.message,
            "lastTransitionTime": (
                now_iso() if changed or previous is None else previous.get("lastTransitionTime", now_iso())
            ),
        }
        if generation is not None:
            entry["observedGeneration"] = generation
        merged[update.type] = entry
    return sorted(merged.values(), key=lambda item: item["type"])


def without_condition(
    current: Iterable[Mapping[str, Any]] | None, condition_type: str
) -> list[dict[str, Any]]:
    return [dict(item) for item in current or () if item.get("type") != condition_type]
