"""The MCP part of the demo seed (``manage.py seed_demo``): the published Expense approval
template exposed as an MCP tool, so ``/mcp`` lists one tool from the first hour."""

from __future__ import annotations

from typing import Any

from apps.flows.models import Flow, FlowStatus

from .models import FlowTool
from .services import flow_tool_save

DEMO_FLOW = "Expense approval"
DEMO_TOOL = "expense_approval"
DEMO_DESCRIPTION = (
    "Decide an employee's expense claim (employee, amount, category): approved within the "
    "category's limit, rejected when never reimbursed or over the hard limit, otherwise "
    "sent to a reviewer (the answer then carries the run's id)."
)


def seed_mcp_tool(*, workspace: Any, actor: Any) -> FlowTool | None:
    """Expose the demo flow as a tool, once: a flow with tool settings (an admin may have
    switched it off) is left as it is, and so is a workspace without the published flow."""
    flow = (
        Flow.objects.filter(workspace=workspace, name=DEMO_FLOW, latest_version__isnull=False)
        .exclude(status=FlowStatus.ARCHIVED)
        .first()
    )
    if flow is None or FlowTool.objects.filter(flow=flow).exists():
        return None
    return flow_tool_save(
        flow=flow, actor=actor, enabled=True, name=DEMO_TOOL, description=DEMO_DESCRIPTION
    )
