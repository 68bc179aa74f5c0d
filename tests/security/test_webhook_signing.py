"""Incoming webhooks: a signing secret of their own (shown once, rotatable by admins),
Standard Webhooks signatures, replays refused, and a rate limit per flow."""

from __future__ import annotations

import json
import time

import pytest

from apps.audit.models import AuditEvent
from apps.connectors.webhook.signing import legacy_signature, signed_headers
from apps.core import ratelimit
from apps.flows.services import flow_webhook_secret_rotate
from apps.runs.models import Run
from tests.runs.helpers import definition, node, published_flow

pytestmark = pytest.mark.django_db(transaction=True)
BODY = json.dumps({"amount": 7}).encode()


@pytest.fixture
def flow(workspace, builder_user):
    return published_flow(
        workspace,
        builder_user,
        definition(
            [
                node("hook", "trigger.webhook", mode="sync", auth="hmac"),
                node("answer", "flow.respond", body={"amount": "trigger.body.amount"}),
            ],
            [("hook", "answer")],
        ),
    )


def deliver(client, flow, headers, body=BODY):
    return client.post(
        f"/hooks/{flow.webhook_token}", data=body, content_type="application/json", headers=headers
    )


def standard(secret, *, message_id="msg_2Lx", at=None):
    headers = signed_headers(secret, message_id=message_id, body=BODY, timestamp=at)
    headers.pop("X-Flowgate-Signature")
    return headers


def test_a_flow_without_a_signing_secret_refuses_signed_deliveries(client, flow):
    refused = deliver(client, flow, standard("whsec_" + "A" * 44))
    assert refused.status_code == 401
    assert "has no webhook signing secret yet" in refused.json()["error"]["message"]


def test_a_replayed_signed_request_is_refused_and_a_resend_is_deduplicated(
    client, flow, admin_user
):
    secret = flow_webhook_secret_rotate(flow=flow, actor=admin_user)
    headers = standard(secret)
    first = deliver(client, flow, headers)
    assert first.status_code == 200 and first.json() == {"amount": 7}

    replay = deliver(client, flow, headers)
    assert replay.status_code == 409
    assert "a replay is refused" in replay.json()["error"]["message"]
    assert Run.objects.filter(flow=flow).count() == 1

    # The sender's retry of the same message, signed anew: the same run, not a second one.
    resend = deliver(client, flow, standard(secret, at=int(time.time()) + 1))
    assert resend.status_code == 200 and resend["X-Flowgate-Duplicate"] == "true"
    assert resend["X-Flowgate-Run"] == first["X-Flowgate-Run"]


def test_the_former_signature_header_still_works_with_the_flows_own_secret(
    client, flow, admin_user
):
    secret = flow_webhook_secret_rotate(flow=flow, actor=admin_user)
    header = {"X-Flowgate-Signature": legacy_signature(secret, BODY, timestamp=int(time.time()))}
    assert deliver(client, flow, header).status_code == 200
    assert deliver(client, flow, header).status_code == 409  # replays refused here too
    token_signed = legacy_signature(flow.webhook_token, BODY, timestamp=int(time.time()))
    assert deliver(client, flow, {"X-Flowgate-Signature": token_signed}).status_code == 403


def test_admins_rotate_the_secret_through_the_api_and_it_is_shown_once(
    admin_client, builder_client, flow
):
    url = f"/api/w/acme/flows/{flow.id}/webhook-secret/"
    assert builder_client.post(url).status_code == 403
    assert admin_client.get(url).json() == {"signing_secret_set": False, "rotated_at": None}

    created = admin_client.post(url)
    assert created.status_code == 201 and created["Cache-Control"] == "no-store"
    first = created.json()["secret"]
    assert first.startswith("whsec_")
    assert "secret" not in admin_client.get(url).json()
    assert first not in json.dumps(admin_client.get(f"/api/w/acme/flows/{flow.id}/").json())

    second = admin_client.post(url).json()["secret"]
    assert second != first
    client = admin_client
    assert deliver(client, flow, standard(first)).status_code == 403
    assert deliver(client, flow, standard(second)).status_code == 200
    actions = list(
        AuditEvent.objects.filter(object_id=str(flow.id)).values_list("action", flat=True)
    )
    assert "flow.webhook_secret_created" in actions and "flow.webhook_secret_rotated" in actions


def test_the_flow_webhook_page_has_the_rotate_button_for_admins_only(
    admin_client, builder_client, flow
):
    page = f"/w/acme/flows/{flow.id}/webhook/"
    builder_view = builder_client.get(page).content.decode()
    assert "Only an admin can generate or rotate it." in builder_view
    assert builder_client.post(page).status_code == 403

    assert "Generate signing secret" in admin_client.get(page).content.decode()
    shown = admin_client.post(page)
    body = shown.content.decode()
    assert "it will not be shown again" in body and 'value="whsec_' in body
    assert shown["Cache-Control"] == "no-store"
    again = admin_client.get(page).content.decode()
    assert 'value="whsec_' not in again and "Rotate signing secret" in again
    editor = admin_client.get(f"/w/acme/flows/{flow.id}/").content.decode()
    assert page in editor


def test_each_flows_webhook_is_rate_limited(
    client, settings, monkeypatch, workspace, builder_user, flow
):
    settings.FLOWGATE = {**settings.FLOWGATE, "RATE_LIMITS": {"webhook": "2/60"}}
    # Thirty seconds into a window, however slowly a busy machine sends the deliveries
    # below: the Retry-After is exact.
    monkeypatch.setattr(ratelimit, "clock", lambda: 1_800_000_030.0)
    other = published_flow(
        workspace,
        builder_user,
        definition([node("hook", "trigger.webhook", mode="async")]),
        name="Other",
    )
    for _ in range(2):
        assert deliver(client, other, {}).status_code == 202
    refused = deliver(client, other, {})
    assert refused.status_code == 429
    # The next window counts the two as spread over this one: one more goes ahead once
    # half of them has slid out, 30 s into it.
    assert refused["Retry-After"] == "60"
    assert Run.objects.filter(flow=other).count() == 2
    # another flow's budget is its own
    assert deliver(client, flow, {}).status_code == 401


def test_a_webhook_id_longer_than_an_idempotency_key_is_400(client, workspace, builder_user):
    plain = published_flow(
        workspace, builder_user, definition([node("hook", "trigger.webhook")]), name="Plain"
    )
    refused = deliver(client, plain, {"webhook-id": "m" * 201})
    assert refused.status_code == 400
    assert "webhook-id header is longer than 200 characters" in refused.json()["error"]["message"]
