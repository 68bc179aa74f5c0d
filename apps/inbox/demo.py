"""Demo content: an expense-approval flow with one run waiting for the demo reviewer."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from .models import OPEN_TASK_STATUSES, ReviewTask

DEMO_FLOW = "Expense approval (demo)"


def demo_definition() -> dict[str, Any]:
    return {
        "schema": "flowgate/flow@1",
        "name": DEMO_FLOW,
        "nodes": [
            {"id": "expense", "type": "trigger.manual", "config": {}},
            {
                "id": "review",
                "type": "human.approval",
                "config": {
                    "title": "Expense {{ trigger.body.id }}: {{ trigger.body.merchant }}",
                    "description": "Check the receipt against the travel policy.",
                    "fields": {
                        "Employee": "trigger.body.employee",
                        "Merchant": "trigger.body.merchant",
                        "Amount (EUR)": "trigger.body.amount",
                        "Category": "trigger.body.category",
                    },
                    "assignees": {"role": "reviewer"},
                    "priority": "trigger.body.amount / 20",
                    "due_in_hours": 48,
                    "on_timeout": "escalate",
                    "escalate_to": {"role": "admin", "due_in_hours": 24},
                },
            },
            {"id": "post", "type": "transform.set", "config": {"values": {"posted": "true"}}},
            {"id": "notify", "type": "transform.set", "config": {"values": {"posted": "false"}}},
        ],
        "edges": [
            {"from": "expense", "to": "review"},
            {"from": "review", "port": "approved", "to": "post"},
            {"from": "review", "port": "rejected", "to": "notify"},
        ],
    }


DEMO_EXPENSE = {
    "id": "EXP-1042",
    "employee": "Bea Builder",
    "merchant": "Hotel Adlon",
    "amount": 1280,
    "category": "travel",
}


def seed_inbox(*, workspace: Any, users: dict[str, Any]) -> None:
    """Publish the demo flow and start one run that waits in the inbox (idempotent)."""
    from apps.flows.models import Flow
    from apps.flows.services import flow_create, flow_publish
    from apps.runs.blocks import envelope
    from apps.runs.engine import advance
    from apps.runs.services import run_start

    builder = users.get("builder")
    with transaction.atomic():
        flow = Flow.objects.filter(workspace=workspace, name=DEMO_FLOW).first()
        if flow is None:
            flow = flow_create(
                workspace=workspace, actor=builder, name=DEMO_FLOW, definition=demo_definition()
            )
        if flow.latest_version is None:
            flow_publish(flow=flow, actor=users.get("admin"), note="demo")
    if ReviewTask.objects.filter(flow=flow, status__in=OPEN_TASK_STATUSES).exists():
        return
    run = run_start(
        flow=flow,
        trigger="manual",
        payload=envelope(DEMO_EXPENSE),
        actor=builder,
        idempotency_key=f"demo-expense-{ReviewTask.objects.filter(flow=flow).count()}",
        enqueue=False,
    ).run
    advance(run.id)
