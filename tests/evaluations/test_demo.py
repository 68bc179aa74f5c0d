"""The demo seed's evaluation cases and MCP tool: the Expense approval template gets cases
that pass on it as shipped (so the Evaluate page's first comparison is meaningful) and is
exposed as an MCP tool that an outside agent can list and call; seeding again changes
nothing, and an admin's later choice (a tool switched off) is kept."""

from __future__ import annotations

import pytest

from apps.accounts.services import api_token_create
from apps.connectors.demo import demo_connections_ensure
from apps.evaluations.demo import DEMO_CASES, DEMO_FLOW, seed_eval_cases
from apps.evaluations.selectors import mismatches
from apps.flows.demo import seed_templates
from apps.flows.models import Flow
from apps.mcp_tools.demo import DEMO_TOOL, seed_mcp_tool
from apps.mcp_tools.selectors import tool_input_schema, tool_list
from apps.mcp_tools.services import flow_tool_save, tool_call
from apps.policies.services import policy_defaults_ensure
from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.models import Trigger
from apps.runs.selectors import run_result
from apps.runs.services import run_start

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def demo_flows(workspace, admin_user):
    """What seed_demo makes before these seeders: policies, connections, templates."""
    policy_defaults_ensure(workspace=workspace, actor=admin_user)
    demo_connections_ensure(workspace=workspace, actor=admin_user)
    seed_templates(workspace=workspace, actor=admin_user)
    return Flow.objects.get(workspace=workspace, name=DEMO_FLOW)


def test_the_demo_cases_pass_on_the_published_template(demo_flows, builder_user):
    cases = seed_eval_cases(workspace=demo_flows.workspace, actor=builder_user)
    assert sorted(case.name for case in cases) == sorted(name for name, _, _ in DEMO_CASES)
    assert seed_eval_cases(workspace=demo_flows.workspace, actor=builder_user) == []
    for case in cases:  # as an evaluation runs them: dry runs of the published version
        run = run_start(
            flow=demo_flows,
            trigger=Trigger.EVALUATION,
            payload=envelope(case.input),
            actor=builder_user,
            version=demo_flows.latest_version,
            dry_run=True,
            enqueue=False,
        ).run
        advance(run.id)
        run.refresh_from_db()
        assert run.status == "succeeded", (case.name, run.error)
        assert mismatches(case.expected, run_result(run)) == [], case.name


def test_the_demo_mcp_tool_is_listed_and_called_like_any_tool(
    demo_flows, admin_user, builder_user, celery_worker
):
    tool = seed_mcp_tool(workspace=demo_flows.workspace, actor=admin_user)
    assert tool is not None and tool.enabled and tool.name == DEMO_TOOL
    assert [listed.name for listed in tool_list(workspace_id=demo_flows.workspace_id)] == [
        DEMO_TOOL
    ]
    schema = tool_input_schema(tool)
    assert set(schema["properties"]) == {"employee", "amount", "category"}
    token = api_token_create(user=builder_user, workspace=demo_flows.workspace, name="agent")
    # The flow may wait for a reviewer, so the call hands it to a worker and waits for it.
    outcome = tool_call(
        token=token.token,
        name=DEMO_TOOL,
        arguments={"employee": "Bo Chen", "amount": 30, "category": "alcohol"},
    )
    assert outcome.finished and not outcome.is_error, outcome.result
    assert outcome.run.trigger == "mcp"
    assert outcome.result["status"] == "rejected"

    # Seeding again keeps the admin's choice: switched off stays off.
    flow_tool_save(
        flow=demo_flows,
        actor=admin_user,
        enabled=False,
        name=DEMO_TOOL,
        description=tool.description,
    )
    assert seed_mcp_tool(workspace=demo_flows.workspace, actor=admin_user) is None
    assert tool_list(workspace_id=demo_flows.workspace_id) == []
