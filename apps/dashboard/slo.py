"""Service-level objectives: which figure each target judges, and how (one list, used by
the dashboard, its JSON API, the targets form and ``/metrics``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Objective:
    key: str  # a field of SloTargets and the measured figure it is judged against
    label: str
    bound: Literal["at_least", "at_most"]
    unit: str


OBJECTIVES = (
    Objective("run_success_percent", "Run success rate", "at_least", "%"),
    Objective("step_p95_ms", "Step p95 latency (slowest block)", "at_most", "ms"),
    Objective("model_p95_ms", "Model p95 latency", "at_most", "ms"),
    Objective("policy_p95_ms", "Policy p95 latency", "at_most", "ms"),
    Objective("inbox_oldest_hours", "Oldest open review task", "at_most", "h"),
)


def slo_status(targets: Any, measured: dict[str, float | None]) -> list[dict[str, Any]]:
    """Each objective with its target, measured value and state: ``met``, ``breached``, or
    ``no_data`` when nothing in the range measured it (no finished run, no model call)."""
    report = []
    for objective in OBJECTIVES:
        target = float(getattr(targets, objective.key))
        value = measured.get(objective.key)
        if value is None:
            state = "no_data"
        elif objective.bound == "at_least":
            state = "met" if value >= target else "breached"
        else:
            state = "met" if value <= target else "breached"
        report.append(
            {
                "key": objective.key,
                "label": objective.label,
                "bound": objective.bound,
                "unit": objective.unit,
                "target": target,
                "measured": None if value is None else round(value, 3),
                "state": state,
            }
        )
    return report
