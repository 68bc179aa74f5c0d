"""What the editor's tool picker offers an ``ai.agent`` node (``GET /api/w/<slug>/agent-tools/``):
the workspace's published flows, each with the input schema the agent derives from its
trigger's sample, and the action blocks an agent may call, each with the parameters the
model fills; and a block tool whose written parameters name open settings fills them."""

from __future__ import annotations

import pytest

from apps.flows import services
from apps.mlmodels.agent import derived_parameters
from tests.runs.helpers import definition, node, published_flow

pytestmark = pytest.mark.django_db

URL = "/api/w/acme/agent-tools/"


def summarise_flow(workspace, actor, name="Summarise"):
    return published_flow(
        workspace,
        actor,
        definition(
            [
                node("start", "trigger.manual", sample={"note": "a text", "words": 20}),
                node("calc", "transform.set", values={"summary": "trigger.body.note"}),
            ],
            [("start", "calc")],
            name=name,
        ),
        name=name,
    )


def test_the_picker_gets_published_flows_with_their_input_schema_and_the_tool_blocks(
    builder_client, workspace, builder_user, django_assert_max_num_queries
):
    summarise_flow(workspace, builder_user)
    services.flow_create(  # a draft is not a tool
        workspace=workspace,
        actor=builder_user,
        name="Unpublished",
        definition=definition([node("start", "trigger.manual")], name="Unpublished"),
    )
    archived = summarise_flow(workspace, builder_user, name="Old summary")
    services.flow_archive(flow=archived, actor=builder_user)

    with django_assert_max_num_queries(6):
        answer = builder_client.get(URL)
    assert answer.status_code == 200
    found = answer.json()
    assert found["flows"] == [
        {
            "slug": "summarise",
            "name": "Summarise",
            "version": 1,
            "description": "Summarise",
            "side_effect": False,
            "parameters": {
                "type": "object",
                "properties": {"note": {"type": "string"}, "words": {"type": "integer"}},
            },
        }
    ]
    blocks = {block["key"]: block for block in found["blocks"]}
    assert {"transform.set", "connector.http", "ai.generate"} <= set(blocks)
    # Triggers, and blocks that wait, join or start runs, are not tools.
    for key in ("trigger.manual", "human.approval", "flow.subflow", "logic.merge", "ai.agent"):
        assert key not in blocks
    http = blocks["connector.http"]
    assert http["title"] == "HTTP request" and http["side_effect"] is True
    assert http["description"].startswith("Call an HTTP API")
    assert http["parameters"] == derived_parameters("connector.http", {})
    assert http["parameters"]["properties"]["url"]["type"] == "string"
    assert "url" in http["parameters"]["required"]


def test_the_catalogue_is_the_workspaces_own(
    outsider_client, reviewer_client, workspace, builder_user
):
    summarise_flow(workspace, builder_user)
    assert outsider_client.get(URL).status_code == 404
    # Reviewers see flows, so they see what an agent may call (the editor is read-only).
    assert [flow["slug"] for flow in reviewer_client.get(URL).json()["flows"]] == ["summarise"]


def test_written_parameters_that_name_open_settings_fill_them_as_literals():
    """The picker writes the derived parameters out; they behave as the derived ones."""
    from apps.mlmodels.agent import AgentTool, _literal_fields

    derived = derived_parameters("connector.http", {"method": "GET"})
    written = AgentTool(
        name="fetch", block="connector.http", config={"method": "GET"}, parameters=derived
    )
    implicit = AgentTool(name="fetch", block="connector.http", config={"method": "GET"})
    arguments = {"url": "https://example.com/{{ x }}", "method": "POST", "order": 7}
    assert _literal_fields(written, arguments) == _literal_fields(implicit, arguments)
    # A template field gets the model's text with no {{ }} to evaluate; a fixed setting
    # stays the builder's; an argument that names no setting is only args.<name>.
    assert _literal_fields(written, arguments) == {"url": "https://example.com/{ { x }}"}
