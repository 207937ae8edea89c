"""A record of the cloud changes one reconciliation made, turned into Kubernetes Events.

Executors append to it as each call succeeds, so the changes made before a failure still get
their Events.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Change:
    reason: str  # Event reason, e.g. RuleCreated
    message: str


@dataclass
class ChangeLog:
    changes: list[Change] = field(default_factory=list)
    # Set as soon as the cloud object's id is known, so status keeps it even if a later call fails.
    cloud_id: str | None = None

    def add(self, reason: str, message: str) -> None:
        self.changes.append(Change(reason, message))

    def __bool__(self) -> bool:
        return bool(self.changes)
