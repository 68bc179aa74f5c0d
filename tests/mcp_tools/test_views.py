"""The MCP tool settings page: admins expose a published flow as a tool (audited); others
see it; bad input is a 400 with the reason; other workspaces get a 404."""

from __future__ import annotations

import json

import pytest

from apps.audit.models import AuditEvent
from apps.flows.services import flow_create
from apps.mcp_tools.models import FlowTool
from apps.mcp_tools.selectors import tool_input_schema, tool_list
from apps.mcp_tools.services import ToolSettingsError, flow_tool_save
from tests.mcp_tools.test_server import triage_flow
from tests.runs.helpers import published_flow

pytestmark = pytest.mark.django_db


def page(flow) -> str:
    return f"/w/acme/tools/flows/{flow.id}/"


def settings(**changes) -> dict:
    return {
        "enabled": "on",
        "name": "claim-triage",
        "description": "Decide a claim.",
        "input_schema": "",
        "timeout_seconds": "20",
        **changes,
    }


def test_an_admin_exposes_a_published_flow_as_a_tool(admin_client, workspace, builder_user):
    flow = published_flow(workspace, builder_user, triage_flow())
    response = admin_client.post(page(flow), settings())
    assert response.status_code == 302
    tool = FlowTool.objects.get(flow=flow)
    assert (tool.enabled, tool.name, tool.timeout_seconds) == (True, "claim-triage", 20)
    assert [listed.name for listed in tool_list(workspace_id=workspace.id)] == ["claim-triage"]
    event = AuditEvent.objects.get(action="flow.mcp_tool_saved")
    assert event.data["enabled"] is True and event.data["tool"] == "claim-triage"
    shown = admin_client.get(page(flow))
    assert b"Input schema agents see" in shown.content and b"&quot;amount&quot;" in shown.content
    listing = admin_client.get("/w/acme/tools/")
    assert b"claim-triage" in listing.content and b"/mcp" in listing.content


def test_bad_settings_are_a_400_with_the_reason(admin_client, workspace, builder_user):
    flow = published_flow(workspace, builder_user, triage_flow())
    bad_name = admin_client.post(page(flow), settings(name="no spaces please"))
    assert bad_name.status_code == 400 and b"1 to 64 letters" in bad_name.content
    not_json = admin_client.post(page(flow), settings(input_schema="{oops"))
    assert not_json.status_code == 400 and b"not JSON" in not_json.content
    not_object = admin_client.post(page(flow), settings(input_schema='{"type": "string"}'))
    assert not_object.status_code == 400 and b"object schema" in not_object.content
    no_description = admin_client.post(page(flow), settings(description=""))
    assert no_description.status_code == 400 and b"describe the tool" in no_description.content
    assert not FlowTool.objects.exists()


def test_a_draft_only_flow_cannot_be_switched_on(workspace, admin_user):
    flow = flow_create(
        workspace=workspace, actor=admin_user, name="Draft", definition=triage_flow()
    )
    with pytest.raises(ToolSettingsError, match="only a published flow"):
        flow_tool_save(flow=flow, actor=admin_user, enabled=True, name="draft", description="x")


def test_two_tools_cannot_share_a_name(workspace, admin_user):
    first = published_flow(workspace, admin_user, triage_flow(), name="One")
    second = published_flow(workspace, admin_user, triage_flow(), name="Two")
    flow_tool_save(flow=first, actor=admin_user, enabled=True, name="triage", description="x")
    with pytest.raises(ToolSettingsError, match="already called 'triage'"):
        flow_tool_save(flow=second, actor=admin_user, enabled=True, name="triage", description="y")


def test_builders_see_the_settings_but_only_admins_change_them(
    builder_client, workspace, builder_user
):
    flow = published_flow(workspace, builder_user, triage_flow())
    assert builder_client.get(page(flow)).status_code == 200
    assert builder_client.post(page(flow), settings()).status_code == 403
    assert not FlowTool.objects.exists()


def test_another_workspaces_flow_is_a_404(outsider_client, workspace, builder_user):
    flow = published_flow(workspace, builder_user, triage_flow())
    assert outsider_client.get(page(flow)).status_code == 404


def test_an_explicit_input_schema_replaces_the_derived_one(workspace, admin_user):
    flow = published_flow(workspace, admin_user, triage_flow())
    schema = {
        "type": "object",
        "properties": {"amount": {"type": "number"}},
        "required": ["amount"],
    }
    tool = flow_tool_save(
        flow=flow, actor=admin_user, enabled=True, name="t", description="x", input_schema=schema
    )
    assert tool_input_schema(tool) == schema
    derived = flow_tool_save(flow=flow, actor=admin_user, enabled=True, name="t", description="x")
    assert json.dumps(tool_input_schema(derived), sort_keys=True) == json.dumps(
        {
            "type": "object",
            "properties": {
                "amount": {"type": "integer", "examples": [50]},
                "customer": {"type": "string", "examples": ["ACME-1"]},
            },
        },
        sort_keys=True,
    )
