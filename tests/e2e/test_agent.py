"""An AI agent in the browser: the builder opens a flow with an ``ai.agent`` node, test-runs
it on the real worker against the real model service (the toy language model), and sees
the agent's tool call, with the policy's decision, on the run page and the decision page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from apps.flows import services
from apps.mlmodels.training import SUPPORT_WRITER
from apps.runs.models import AgentCall, Run
from studio.celery import app as celery_app
from tests.e2e.conftest import ARTIFACTS, log_in, serve_studio
from tests.mlmodels.helpers import LOOKUP_TOOL as LOOKUP
from tests.runs.helpers import definition, node
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.slow

QUEUE = "test-e2e-agent"


@pytest.fixture
def agent_studio_url(test_database_url, model_stack, language_models, monkeypatch):
    """A studio and a worker that know the test model service, on a queue of their own."""
    monkeypatch.setitem(celery_app.conf, "task_default_queue", QUEUE)
    environment = {"CELERY_QUEUE": QUEUE, "MODEL_SERVICE_URL": model_stack.service.url}
    worker = WorkerProcess(database_url=test_database_url, environment=environment).start()
    try:
        with serve_studio(test_database_url, **environment) as url:
            yield url
    finally:
        worker.stop()


def test_a_builder_test_runs_an_agent_and_sees_its_calls(
    open_page, agent_studio_url, workspace, builder_user
):
    flow = services.flow_create(
        workspace=workspace,
        actor=builder_user,
        name="Order agent",
        definition=definition(
            [
                node("start", "trigger.manual", sample={"id": 42}),
                node(
                    "agent",
                    "ai.agent",
                    model=SUPPORT_WRITER,
                    goal="Find order {{ trigger.body.id }} and say where it is.",
                    max_tokens=120,
                    tools=[LOOKUP],
                ),
            ],
            [("start", "agent")],
            name="Order agent",
        ),
    )
    page = open_page(agent_studio_url)
    log_in(page, "bea")
    page.goto(f"/w/acme/flows/{flow.id}/")
    agent = page.locator('.block-node[data-node-id="agent"]')
    expect(agent).to_be_visible()
    expect(agent.locator(".block-problem")).to_have_count(0)
    agent.click()
    expect(page.locator('.inspector [data-field="tools"]')).to_be_visible()
    expect(page.locator('.inspector [data-field="goal"]')).to_be_visible()

    page.get_by_role("tab", name="Test run").click()
    page.get_by_label("Sample input").fill('{"id": 42}')
    page.get_by_role("button", name="Run test").click()
    expect(agent).to_have_attribute("data-status", "succeeded", timeout=90_000)
    run = Run.objects.get(flow=flow)
    (call,) = AgentCall.objects.filter(run=run)

    page.goto(f"/w/acme/runs/{run.id}/")
    page.locator('details[data-step="agent"] > summary').click()
    calls = page.locator('[data-agent-calls="agent"]')
    expect(calls).to_be_visible()
    row = calls.locator('tr[data-call="lookup"]')
    expect(row).to_have_attribute("data-call-status", "succeeded")
    expect(row).to_contain_text("transform.set")
    expect(row).to_contain_text("allow")
    expect(row).to_contain_text("lookup may be called by agents")
    expect(row).to_contain_text(f'"order_id": {call.arguments["order_id"]}')
    expect(row).to_contain_text('"state": "shipped"')
    ARTIFACTS.mkdir(exist_ok=True)
    calls.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "agent-run-page.png"), full_page=True)

    page.get_by_role("link", name="Explain this decision").click()
    expect(page).to_have_url(re.compile(rf"/audit/decisions/{run.id}/agent/$"))
    explained = page.locator("#agent-calls")
    expect(explained).to_contain_text("The agent's calls, one by one")
    expect(explained.locator('[data-call="lookup"]')).to_contain_text("allow")
    page.screenshot(path=str(ARTIFACTS / "agent-decision-page.png"), full_page=True)
