"""The MCP tool settings over the REST API: members read them, admins change them."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.accounts.services import api_token_create
from tests.mcp_tools.test_server import triage_flow
from tests.runs.helpers import published_flow

pytestmark = pytest.mark.django_db


def api(user, workspace) -> APIClient:
    client = APIClient()
    secret = api_token_create(user=user, workspace=workspace, name="t").secret
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_an_admin_exposes_a_flow_and_builders_read_it(workspace, admin_user, builder_user):
    flow = published_flow(workspace, builder_user, triage_flow())
    url = f"/api/w/acme/flows/{flow.id}/mcp-tool/"
    assert api(builder_user, workspace).get(url).json()["listed"] is False
    body = {"enabled": True, "name": "triage", "description": "Decide a claim."}
    saved = api(admin_user, workspace).put(url, body, format="json")
    assert saved.status_code == 200 and saved.json()["listed"] is True
    assert saved.json()["effective_input_schema"]["properties"]["amount"]["type"] == "integer"
    shown = api(builder_user, workspace).get(url).json()
    assert (shown["name"], shown["enabled"]) == ("triage", True)
    assert api(builder_user, workspace).put(url, body, format="json").status_code == 403


def test_bad_tool_settings_are_a_400(workspace, admin_user):
    flow = published_flow(workspace, admin_user, triage_flow())
    url = f"/api/w/acme/flows/{flow.id}/mcp-tool/"
    client = api(admin_user, workspace)
    schema = client.put(
        url, {"enabled": True, "name": "t", "description": "x", "input_schema": [1]}, format="json"
    )
    assert schema.status_code == 400 and schema.json()["error"]["field"] == "input_schema"
    name = client.put(url, {"enabled": False, "name": "a b"}, format="json")
    assert name.status_code == 400 and name.json()["error"]["field"] == "name"
    assert client.put(url, {"name": "t"}, format="json").status_code == 400  # no "enabled"
