"""The audit trail over the REST API: filters, pagination, verification, isolation."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.audit.services import audit_record

pytestmark = pytest.mark.django_db

LIST = "/api/w/acme/audit/"
VERIFY = "/api/w/acme/audit/verify/"


@pytest.fixture
def trail(workspace, admin_user):
    for number in range(3):
        audit_record(
            workspace_id=workspace.id,
            action="flow.published",
            actor=admin_user,
            object_type="flow",
            object_id=f"f-{number}",
            summary=f"published v{number}",
        )
    audit_record(workspace_id=workspace.id, action="decision.policy", object_type="run")


def test_list_filters_and_paginates(admin_client, trail):
    body = admin_client.get(LIST, {"action": "flow", "limit": 2}).json()
    assert body["count"] == 3 and len(body["results"]) == 2
    assert [event["sequence"] for event in body["results"]] == [3, 2]
    assert body["results"][0]["actor"] == "Ada"
    decisions = admin_client.get(LIST, {"action": "decision.policy"}).json()
    assert decisions["count"] == 1


def test_invalid_filters_are_a_400_naming_the_field(admin_client, trail):
    response = admin_client.get(LIST, {"since": "yesterday"})
    assert response.status_code == 400
    assert "since" in response.json()["error"]["fields"]


def test_verify_reports_the_first_tampered_event(admin_client, workspace, trail):
    assert admin_client.post(VERIFY).json() == {
        "ok": True,
        "checked": 4,
        "first_bad_sequence": None,
        "problem": "",
        "unsealed": 0,
    }
    AuditEvent.objects.filter(workspace=workspace, sequence=2).update(actor_label="mallory")
    report = admin_client.post(VERIFY).json()
    assert report["ok"] is False and report["first_bad_sequence"] == 2


def test_only_admins_of_the_workspace(builder_client, outsider_client, client, trail):
    assert builder_client.get(LIST).status_code == 403
    assert outsider_client.get(LIST).status_code == 404
    assert outsider_client.post(VERIFY).status_code == 404
    assert client.get(LIST).status_code == 401
