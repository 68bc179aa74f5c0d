"""AI steps on the dashboard: tokens, cost and latency per model, from real runs of
ai.generate against a provider connection (a loopback stand-in for an outside API)."""

from __future__ import annotations

import pytest

from apps.connectors.services import connection_create
from apps.dashboard import rollups, selectors
from apps.runs.models import StepRun
from tests.dashboard.test_views import dashboard_url, execute
from tests.runs.helpers import definition, node, published_flow
from tests.support.openai_provider import OpenAIProvider

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def provider(settings):
    settings.FLOWGATE = {
        **settings.FLOWGATE,
        "SSRF_ALLOWLIST": ["127.0.0.1"],
        "LLM_TOKEN_COSTS": {"outside-model": 2.0},
    }
    server = OpenAIProvider(["Thanks, we are on it."])
    yield server
    server.close()


def test_ai_steps_show_tokens_cost_and_latency_per_model(
    workspace, admin_user, builder_user, builder_client, provider
):
    connection_create(
        workspace=workspace,
        actor=admin_user,
        name="outside",
        type="llm_openai",
        config={"base_url": provider.url, "default_model": "outside-model"},
        secrets={"api_key": "sk-test"},
    )
    flow = published_flow(
        workspace,
        builder_user,
        definition(
            [
                node("start", "trigger.manual"),
                node("draft", "ai.generate", connection="outside", prompt="{{ trigger.body.q }}"),
            ],
            [("start", "draft")],
        ),
        name="Draft",
    )
    runs = [execute(flow, {"q": "help"}) for _ in range(2)]
    assert all(run.status == "succeeded" for run in runs)
    step = StepRun.objects.filter(node_id="draft").first()
    assert step.meta["usage"]["total"] == 18 and step.meta["cost"] == pytest.approx(0.036)

    rollups.materialise()
    figures = selectors.dashboard_figures(workspace=workspace, range_name="1h")["ai"]
    assert figures["calls"] == 2 and figures["tokens"] == 36
    assert figures["cost"] == pytest.approx(0.072)
    [row] = figures["rows"]
    assert row["name"] == "outside-model" and row["p95_ms"] > 0
    page = builder_client.get(dashboard_url()).content.decode()
    assert 'data-ai-model="outside-model"' in page and "36 tokens" in page
