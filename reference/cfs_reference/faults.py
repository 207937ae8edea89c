"""Fault injection: error codes at a rate per action, added latency, and create_failed outcomes.

Set from flags (`--fault ACTION:CODE:RATE`, `--latency ACTION:MS`) and replaced at run time
through the admin endpoint. ACTION may be '*' (every action).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ANY_ACTION = "*"


@dataclass(frozen=True)
class FaultRule:
    action: str
    code: str
    rate: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must be within 0..1, got {self.rate}")
        if not self.code:
            raise ValueError("fault code must not be empty")


def parse_fault(text: str) -> FaultRule:
    """ACTION:CODE:RATE, e.g. '*:RequestLimitExceeded:0.3'."""
    parts = text.split(":")
    if len(parts) != 3:
        raise ValueError(f"--fault wants ACTION:CODE:RATE, got {text!r}")
    return FaultRule(parts[0], parts[1], float(parts[2]))


def parse_latency(text: str) -> tuple[str, float]:
    """ACTION:MS, e.g. 'DescribeCfsFileSystems:50'."""
    action, sep, ms = text.rpartition(":")
    if not sep or not action:
        raise ValueError(f"--latency wants ACTION:MS, got {text!r}")
    return action, float(ms)


class Faults:
    def __init__(
        self,
        rules: Iterable[FaultRule] = (),
        latency_ms: Mapping[str, float] | None = None,
        create_failed_rate: float = 0.0,
        seed: int | None = None,
    ):
        self._random = random.Random(seed)
        self.replace(list(rules), dict(latency_ms or {}), create_failed_rate)

    def replace(
        self, rules: list[FaultRule], latency_ms: dict[str, float], create_failed_rate: float
    ) -> None:
        if not 0.0 <= create_failed_rate <= 1.0:
            raise ValueError(f"create_failed_rate must be within 0..1, got {create_failed_rate}")
        self.rules = rules
        self.latency_ms = latency_ms
        self.create_failed_rate = create_failed_rate

    def replace_from_json(self, body: Mapping[str, Any]) -> None:
        rules = [
            FaultRule(str(f["action"]), str(f["code"]), float(f["rate"])) for f in body.get("faults", [])
        ]
        latency = {str(k): float(v) for k, v in body.get("latency", {}).items()}
        self.replace(rules, latency, float(body.get("create_failed_rate", 0.0)))

    def as_json(self) -> dict[str, Any]:
        return {
            "faults": [{"action": r.action, "code": r.code, "rate": r.rate} for r in self.rules],
            "latency": self.latency_ms,
            "create_failed_rate": self.create_failed_rate,
        }

    def error_for(self, action: str) -> str | None:
        """The injected error code for this call, if any rule fires."""
        for rule in self.rules:
            if rule.action in (action, ANY_ACTION) and self._random.random() < rule.rate:
                return rule.code
        return None

    def delay_seconds(self, action: str) -> float:
        return self.latency_ms.get(action, self.latency_ms.get(ANY_ACTION, 0.0)) / 1000.0

    def create_fails(self) -> bool:
        return self.create_failed_rate > 0 and self._random.random() < self.create_failed_rate
