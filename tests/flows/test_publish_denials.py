"""A publish the gate refuses leaves its trace: the audit trail keeps the denial."""

from __future__ import annotations

import json

import pytest

from apps.audit.models import AuditEvent
from apps.policies.gates import FLOW_PUBLISH
from apps.policies.selectors import policy_for_gate
from tests.runs.helpers import definition, node

# Real commits: the refusal must not roll back what was recorded about it.
pytestmark = pytest.mark.django_db(transaction=True)

CALLING = definition(
    [
        node("start", "trigger.manual"),
        node("call", "connector.http", url="https://evil.example.net/x"),
    ],
    [("start", "call")],
    name="Caller",
)


def test_a_denied_publish_is_audited_and_its_gate_policy_stays(builder_client, workspace):
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
    actions = list(AuditEvent.objects.filter(workspace=workspace).values_list("action", flat=True))
    assert "flow.publish_denied" in actions and "gate.evaluated" in actions
    record = AuditEvent.objects.get(workspace=workspace, action="flow.publish_denied")
    assert any("evil.example.net" in reason for reason in record.data["reasons"])
    assert policy_for_gate(workspace_id=workspace.id, gate=FLOW_PUBLISH) is not None


def test_the_audit_trail_names_the_publisher_the_same_way_in_every_event(
    builder_client, builder_user, workspace
):
    created = builder_client.post(
        f"/api/w/{workspace.slug}/flows/",
        data=json.dumps({"name": "Caller", "definition": CALLING}),
        content_type="application/json",
    ).json()
    builder_client.post(
        f"/api/w/{workspace.slug}/flows/{created['id']}/publish/",
        data={},
        content_type="application/json",
    )
    events = AuditEvent.objects.filter(workspace=workspace, action__regex=r"^(flow|gate)\.")
    labels = set(events.values_list("actor_label", flat=True))
    assert labels == {str(builder_user)}  # "Bea" throughout, never "bea"
