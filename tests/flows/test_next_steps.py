"""A refusal says what to do next: whom to ask, and where to find them."""

from __future__ import annotations

import json

import pytest

from apps.core.http import SSRFError, check_url
from tests.runs.helpers import definition, node

pytestmark = pytest.mark.django_db

CALLING = definition(
    [
        node("start", "trigger.manual"),
        node("call", "connector.http", url="https://evil.example.net/x"),
    ],
    [("start", "call")],
    name="Caller",
)


def test_a_refused_publish_names_the_admins_and_links_to_them(
    builder_client, admin_user, workspace
):
    created = builder_client.post(
        f"/api/w/{workspace.slug}/flows/",
        data=json.dumps({"name": "Caller", "definition": CALLING}),
        content_type="application/json",
    ).json()
    denied = builder_client.post(
        f"/api/w/{workspace.slug}/flows/{created['id']}/publish/",
        data={},
        content_type="application/json",
    )
    assert denied.status_code == 403
    next_step = denied.json()["error"]["next"]
    assert next_step["message"].startswith(f"Ask {admin_user} to publish this flow")
    assert next_step["url"] == f"/w/{workspace.slug}/settings/#members"
    members = builder_client.get(next_step["url"])
    assert str(admin_user) in members.content.decode()


def test_a_refused_call_to_an_internal_address_says_whom_to_ask():
    with pytest.raises(
        SSRFError,
        match=r"ask an admin of your workspace to add it to the egress allow-list \(Settings → Egress\)",
    ):
        check_url("http://10.1.2.3/")
