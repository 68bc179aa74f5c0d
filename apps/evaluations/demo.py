"""The evaluations part of the demo seed (``manage.py seed_demo``): example cases for the
Expense approval template, so its Evaluate page can compare versions from the first hour."""

from __future__ import annotations

from typing import Any

from apps.flows.models import Flow

from .models import EvalCase
from .services import eval_case_save

DEMO_FLOW = "Expense approval"
# (name, trigger body, what the result must contain): each passes on the template as
# shipped with the default expense_limits policy.
DEMO_CASES: tuple[tuple[str, dict[str, Any], dict[str, Any]], ...] = (
    (
        "a meal within the limit is approved",
        {"employee": "Ana Lopez", "amount": 42, "category": "meals"},
        {"status": "approved", "employee": "Ana Lopez", "amount": 42},
    ),
    (
        "alcohol is never reimbursed",
        {"employee": "Bo Chen", "amount": 30, "category": "alcohol"},
        {"status": "rejected", "reasons": ["category alcohol is never reimbursed"]},
    ),
    (
        "travel over the hard limit is rejected",
        {"employee": "Cleo Diaz", "amount": 12500, "category": "travel"},
        # A matcher: one of the reasons says so (their wording may change).
        {"status": "rejected", "reasons": {"$contains": "over the hard limit"}},
    ),
    (
        "training within the limit is approved",
        {"employee": "Dev Patel", "amount": 1200.5, "category": "training"},
        {"status": "approved", "amount": {"$approx": 1200.5, "$tolerance": 0.01}},
    ),
)


def seed_eval_cases(*, workspace: Any, actor: Any) -> list[EvalCase]:
    """Add the demo cases the Expense approval flow does not have yet (by name); nothing
    when the workspace has no such flow."""
    flow = Flow.objects.filter(workspace=workspace, name=DEMO_FLOW).first()
    if flow is None:
        return []
    existing = set(flow.eval_cases.values_list("name", flat=True))
    return [
        eval_case_save(flow=flow, actor=actor, name=name, input=body, expected=expected)
        for name, body, expected in DEMO_CASES
        if name not in existing
    ]
