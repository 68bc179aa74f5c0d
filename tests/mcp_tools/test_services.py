"""A tool call's outcomes as the agent reads them: a failed run is a tool error with the
run's error, a run that waits for a person (or outlasts the tool's timeout) carries on and
the agent gets its id; a reviewer's token calls nothing."""

from __future__ import annotations

import time

import pytest

from apps.accounts.services import api_token_create
from apps.mcp_tools.services import ToolCallRefused, flow_tool_save, tool_call
from apps.runs.models import Run
from tests.inbox.helpers import approval_flow
from tests.runs.helpers import definition, node, published_flow

pytestmark = pytest.mark.django_db(transaction=True)


def expose(flow, admin, name: str, timeout: float = 30):
    return flow_tool_save(
        flow=flow, actor=admin, enabled=True, name=name, description="x", timeout_seconds=timeout
    )


def test_a_failed_run_is_a_tool_error_with_the_runs_error(workspace, admin_user, builder_user):
    broken = definition(
        [node("start", "trigger.manual"), node("calc", "transform.set", values={"x": "1 / 0"})],
        [("start", "calc")],
    )
    expose(published_flow(workspace, builder_user, broken), admin_user, "broken")
    token = api_token_create(user=builder_user, workspace=workspace, name="agent").token
    outcome = tool_call(token=token, name="broken", arguments={})
    assert outcome.finished and outcome.is_error
    assert outcome.run.status == "failed" and "division" in outcome.result["message"]


def test_a_run_that_waits_carries_on_and_the_agent_gets_its_id(workspace, admin_user, builder_user):
    expose(published_flow(workspace, builder_user, approval_flow()), admin_user, "pay", 1)
    token = api_token_create(user=builder_user, workspace=workspace, name="agent").token
    started = time.monotonic()
    outcome = tool_call(token=token, name="pay", arguments={"amount": 10, "customer": "c"})
    assert time.monotonic() - started < 10  # the tool's one-second budget, not a hang
    assert not outcome.finished and not outcome.is_error
    assert str(outcome.run.pk) in outcome.result["message"]
    assert Run.objects.get(pk=outcome.run.pk).trigger == "mcp"


def test_a_reviewers_token_calls_no_tool(workspace, admin_user, reviewer_user):
    expose(published_flow(workspace, admin_user, approval_flow()), admin_user, "pay")
    token = api_token_create(user=reviewer_user, workspace=workspace, name="agent").token
    with pytest.raises(ToolCallRefused) as refused:
        tool_call(token=token, name="pay", arguments={})
    assert refused.value.code == "forbidden"
    assert refused.value.message == "a reviewer cannot start runs, so cannot call tools"
    assert not Run.objects.exists()
