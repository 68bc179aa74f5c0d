"""The result of every policy evaluation, whichever engine produced it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Decision:
    """``allow`` is the verdict (deny by default: any error or undefined result is False);
    ``result`` is the rule's structured value (a route name, an object); ``reasons`` are
    human-readable; ``policy``/``version`` identify exactly what was evaluated."""

    allow: bool
    result: Any = None
    reasons: list[str] = field(default_factory=list)
    policy: str = ""
    version: str = ""
    duration_ms: float = 0.0
    error: str = ""

    @classmethod
    def deny(cls, reason: str, *, policy: str = "", version: str = "", error: str = "") -> Decision:
        return cls(allow=False, reasons=[reason], policy=policy, version=version, error=error)
