"""Publish requests: a builder whom the workspace or the publishing policy stops asks an
admin; the admin sees the change and the gate's answer, approves (publishes exactly what was
asked) or rejects with a comment. Same for a rollback."""

from __future__ import annotations

import pytest

from apps.accounts.services import api_token_create
from apps.accounts.team import workspace_set_publish_approval
from apps.audit.models import AuditEvent
from apps.flows.models import PublishRequest
from apps.flows.publish_requests import publish_request_create, publish_request_decide
from apps.flows.services import FlowError, flow_create, flow_draft_save, flow_publish
from tests.runs.helpers import definition, node

RISKY = definition(
    [
        node("start", "trigger.manual"),
        node("call", "connector.http", method="GET", url="https://evil.example.net/x"),
    ],
    [("start", "call")],
    name="Risky",
)
SAFE = definition(
    [node("start", "trigger.manual"), node("set", "transform.set", values={"a": "1"})],
    [("start", "set")],
    name="Safe",
)


def test_the_gate_stops_the_builder_who_requests_and_the_admin_approves(
    workspace, builder_user, admin_user
):
    flow = flow_create(workspace=workspace, actor=builder_user, name="Risky", definition=RISKY)
    with pytest.raises(FlowError):
        flow_publish(flow=flow, actor=builder_user)

    request = publish_request_create(flow=flow, actor=builder_user, note="needs the new API")

    assert request.gate["allow"] is False
    assert "an admin must publish this flow" in request.gate["reasons"]
    decided = publish_request_decide(request=request, actor=admin_user, approve=True)
    assert decided.status == "approved" and decided.version.number == 1
    assert decided.version.published_by == admin_user
    assert decided.version.note == "needs the new API (requested by Bea)"
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"flow.publish_requested", "flow.publish_request_approved", "flow.published"} <= actions


def test_approval_publishes_what_was_asked_not_later_edits(workspace, builder_user, admin_user):
    flow = flow_create(workspace=workspace, actor=builder_user, name="Safe", definition=SAFE)
    request = publish_request_create(flow=flow, actor=builder_user)
    edited = {**SAFE, "nodes": [*SAFE["nodes"], node("more", "transform.set", values={})]}
    flow_draft_save(flow=flow, actor=builder_user, definition=edited, revision=flow.draft_revision)

    version = publish_request_decide(request=request, actor=admin_user, approve=True).version

    assert [n["id"] for n in version.definition["nodes"]] == ["start", "set"]


def test_a_rejection_needs_a_comment_and_a_request_is_decided_once(
    workspace, builder_user, admin_user
):
    flow = flow_create(workspace=workspace, actor=builder_user, name="Safe", definition=SAFE)
    request = publish_request_create(flow=flow, actor=builder_user)
    with pytest.raises(FlowError, match="say why"):
        publish_request_decide(request=request, actor=admin_user, approve=False)
    with pytest.raises(FlowError, match="already waiting"):
        publish_request_create(flow=flow, actor=builder_user)

    publish_request_decide(request=request, actor=admin_user, approve=False, comment="not yet")

    with pytest.raises(FlowError, match="already rejected"):
        publish_request_decide(request=request, actor=admin_user, approve=True)
    flow.refresh_from_db()
    assert flow.latest_version is None


def test_an_admin_cannot_approve_their_own_request(workspace, admin_user):
    flow = flow_create(workspace=workspace, actor=admin_user, name="Safe", definition=SAFE)
    request = publish_request_create(flow=flow, actor=admin_user)
    with pytest.raises(FlowError, match="another admin"):
        publish_request_decide(request=request, actor=admin_user, approve=True)


def test_a_rollback_request_publishes_the_old_version_again(workspace, builder_user, admin_user):
    flow = flow_create(workspace=workspace, actor=builder_user, name="Safe", definition=SAFE)
    flow_publish(flow=flow, actor=builder_user)
    changed = {**SAFE, "nodes": [SAFE["nodes"][0], node("set", "transform.set", values={"a": "2"})]}
    flow_publish(flow=flow, actor=builder_user, definition=changed)

    request = publish_request_create(flow=flow, actor=builder_user, rollback_to=1)
    version = publish_request_decide(request=request, actor=admin_user, approve=True).version

    first = flow.versions.get(number=1).definition["nodes"]
    assert version.number == 3 and version.definition["nodes"] == first
    with pytest.raises(FlowError, match="no version 9"):
        publish_request_create(flow=flow, actor=builder_user, rollback_to=9)


def test_a_workspace_that_requires_approval_refuses_builders_publishing(
    client, workspace, builder_user, admin_user
):
    workspace_set_publish_approval(workspace=workspace, actor=admin_user, required=True)
    flow = flow_create(workspace=workspace, actor=builder_user, name="Safe", definition=SAFE)
    auth = {
        "HTTP_AUTHORIZATION": "Bearer "
        + api_token_create(user=builder_user, workspace=workspace, name="t").secret
    }

    refused = client.post(
        f"/api/w/acme/flows/{flow.id}/publish/", {}, content_type="application/json", **auth
    )
    assert refused.status_code == 403 and "approval" in refused.json()["error"]["message"]

    asked = client.post(
        f"/api/w/acme/flows/{flow.id}/publish-requests/", {"note": "please"},
        content_type="application/json", **auth,
    )  # fmt: skip
    assert asked.status_code == 201 and asked.json()["gate"]["allow"] is True
    assert asked.json()["diff"]["nodes"]["added"] == ["set", "start"]

    admin_auth = {
        "HTTP_AUTHORIZATION": "Bearer "
        + api_token_create(user=admin_user, workspace=workspace, name="t").secret
    }
    decided = client.post(
        f"/api/w/acme/flows/{flow.id}/publish-requests/{asked.json()['id']}/decide/",
        {"decision": "approve"}, content_type="application/json", **admin_auth,
    )  # fmt: skip
    assert decided.status_code == 200 and decided.json()["version"] == 1
    builder_decides = client.post(
        f"/api/w/acme/flows/{flow.id}/publish-requests/{asked.json()['id']}/decide/",
        {"decision": "approve"}, content_type="application/json", **auth,
    )  # fmt: skip
    assert builder_decides.status_code == 403


def test_the_admins_inbox_lists_requests_and_the_page_shows_diff_and_gate(
    admin_client, workspace, builder_user
):
    flow = flow_create(workspace=workspace, actor=builder_user, name="Risky", definition=RISKY)
    request = publish_request_create(flow=flow, actor=builder_user, note="new API")

    inbox = admin_client.get("/w/acme/inbox/").content.decode()
    assert "Publish requests" in inbox and "new API" in inbox
    page = admin_client.get(f"/w/acme/flows/requests/{request.id}/").content.decode()
    assert "an admin must publish this flow" in page
    assert "Approve and publish" in page and "<code>call</code>" in page
    assert PublishRequest.objects.get().status == "pending"


@pytest.mark.django_db(transaction=True)
def test_the_worker_emails_the_admins_a_new_request(
    workspace, builder_user, admin_user, celery_worker
):
    from tests.support.smtp import notifications_connection, smtp_server
    from tests.support.waiting import wait_for

    flow = flow_create(workspace=workspace, actor=builder_user, name="Risky", definition=RISKY)
    with smtp_server() as (controller, mailbox):
        notifications_connection(workspace, admin_user, controller.port)
        request = publish_request_create(flow=flow, actor=builder_user, note="new partner")
        [(_, recipients, message)] = wait_for(lambda: mailbox.messages or None)

    assert recipients == [admin_user.email]  # admins, not the builder who asked
    assert message["Subject"] == "Publish request: Risky"
    assert f"/w/acme/flows/requests/{request.id}/" in message.get_content()
