"""A flow that pauses at ``human.approval``, and helpers to run it in tests."""

from __future__ import annotations

from typing import Any

from apps.accounts.models import Membership
from apps.inbox.models import ReviewTask
from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.models import Run
from apps.runs.services import run_start
from tests.runs.helpers import definition, node, published_flow


def approval_flow(**approval_config: Any) -> dict[str, Any]:
    config = {
        "title": "Claim {{ trigger.body.claim }}",
        "description": "Check the amount of {{ trigger.body.customer }}.",
        "fields": {"Amount": "trigger.body.amount", "Customer": "trigger.body.customer"},
        "priority": "trigger.body.amount / 100",
        **approval_config,
    }
    return definition(
        [
            node("start", "trigger.manual"),
            node("review", "human.approval", **config),
            node(
                "pay",
                "transform.set",
                values={"paid": "true", "by": "steps.review.output.reviewer"},
            ),
            node("refuse", "transform.set", values={"paid": "false"}),
            node("rework", "transform.set", values={"rework": "true"}),
            node("late", "transform.set", values={"late": "true"}),
        ],
        [
            ("start", "review"),
            ("review", "pay", "approved"),
            ("review", "refuse", "rejected"),
            ("review", "rework", "changes_requested"),
            ("review", "late", "expired"),
        ],
        name="Claims review",
    )


CLAIM = {"claim": "C-17", "customer": "<b>Wile E.</b>", "amount": 1250}


def start_waiting_run(workspace, builder, body=None, *, enqueue=False, **config) -> Run:
    """Start a run of the approval flow; without a worker, advance it inline."""
    flow = published_flow(workspace, builder, approval_flow(**config), name="Claims review")
    run = run_start(
        flow=flow,
        trigger="manual",
        payload=envelope(body or CLAIM),
        actor=builder,
        enqueue=enqueue,
    ).run
    if not enqueue:
        advance(run.id)
    run.refresh_from_db()
    return run


def membership(user, workspace) -> Membership:
    return Membership.objects.get(user=user, workspace=workspace)


def task_of(run: Run) -> ReviewTask:
    return ReviewTask.objects.get(run=run)


def finish_inline(run: Run) -> Run:
    """Advance a resumed run in this process (tests without a worker)."""
    advance(run.id)
    run.refresh_from_db()
    return run
