"""Pre-flight: a flow naming what its workspace lacks shows problems and is not published."""

from __future__ import annotations

import json

import pytest

from apps.flows import services
from apps.flows.gallery import template_definition
from apps.flows.models import FlowVersion
from tests.runs.helpers import definition, node

pytestmark = pytest.mark.django_db


def problems_of(client, workspace, flow_id):
    response = client.post(
        f"/api/w/{workspace.slug}/flows/{flow_id}/validate/",
        data={},
        content_type="application/json",
    )
    assert response.status_code == 200
    return {(p["node"], p["field"]): p["message"] for p in response.json()["problems"]}


def test_the_expense_template_without_its_policy_and_connection_is_flagged_and_not_published(
    builder_client, builder_user, workspace
):
    flow = services.flow_create(
        workspace=workspace,
        actor=builder_user,
        name="Expenses",
        definition=template_definition("expense-approval"),
    )
    problems = problems_of(builder_client, workspace, flow.id)
    assert any(
        field == "policy" and "no published policy 'expense_limits'" in message
        for (_, field), message in problems.items()
    )
    assert any(
        field == "connection" and "no connection named 'demo-ledger'" in message
        for (_, field), message in problems.items()
    )
    refused = builder_client.post(
        f"/api/w/{workspace.slug}/flows/{flow.id}/publish/",
        data={},
        content_type="application/json",
    )
    assert refused.status_code == 400
    assert any(p["field"] == "policy" for p in refused.json()["error"]["problems"])
    assert not FlowVersion.objects.filter(flow=flow).exists()


def test_a_missing_sub_flow_is_flagged_and_a_published_one_is_not(
    builder_client, builder_user, workspace
):
    calling = definition(
        [node("start", "trigger.manual"), node("child", "flow.subflow", flow="enrich")],
        [("start", "child")],
    )
    flow = services.flow_create(
        workspace=workspace, actor=builder_user, name="Parent", definition=calling
    )
    assert (
        "no published flow 'enrich'"
        in problems_of(builder_client, workspace, flow.id)[("child", "flow")]
    )
    enrich = services.flow_create(workspace=workspace, actor=builder_user, name="Enrich")
    services.flow_publish(flow=enrich, actor=builder_user)
    assert problems_of(builder_client, workspace, flow.id) == {}


def test_a_draft_save_reports_the_missing_references(builder_client, builder_user, workspace):
    flow = services.flow_create(workspace=workspace, actor=builder_user, name="Limits")
    checking = definition(
        [
            node("start", "trigger.manual"),
            node("limit", "policy.evaluate", policy="nowhere", rule="decision", input={}),
        ],
        [("start", "limit")],
    )
    saved = builder_client.put(
        f"/api/w/{workspace.slug}/flows/{flow.id}/draft/",
        data=json.dumps({"definition": checking, "revision": flow.draft_revision}),
        content_type="application/json",
    )
    assert saved.status_code == 200
    assert [p["field"] for p in saved.json()["problems"]] == ["policy"]
