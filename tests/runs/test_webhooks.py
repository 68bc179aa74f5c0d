"""Webhook triggers as an integrator sees them: URLs, signatures, sync answers, dedup."""

from __future__ import annotations

import base64
import json
import time

import pytest

from apps.connectors.webhook.signing import new_secret, signed_headers
from apps.flows.services import flow_webhook_secret_rotate
from apps.runs.models import Run
from tests.runs.helpers import definition, node, published_flow

pytestmark = pytest.mark.django_db(transaction=True)


def decision_flow(mode: str = "sync", auth: str = "token") -> dict:
    return definition(
        [
            node("hook", "trigger.webhook", mode=mode, auth=auth),
            node(
                "score", "transform.set", values={"risk": "trigger.body.amount > 1000 ? 0.9 : 0.1"}
            ),
            node("route", "logic.branch", condition="steps.score.output.risk > 0.5"),
            node("reject", "flow.respond", body={"decision": "'reject'"}),
            node(
                "approve",
                "flow.respond",
                body={"decision": "'approve'", "risk": "steps.score.output.risk"},
            ),
        ],
        [
            ("hook", "score"),
            ("score", "route"),
            ("route", "reject", "true"),
            ("route", "approve", "false"),
        ],
    )


def post(client, flow, body, **headers):
    return client.post(
        f"/hooks/{flow.webhook_token}",
        data=json.dumps(body) if not isinstance(body, (bytes, str)) else body,
        content_type="application/json",
        headers=headers,
    )


def test_a_sync_webhook_answers_with_the_flows_response(client, workspace, builder_user):
    flow = published_flow(workspace, builder_user, decision_flow())
    response = post(client, flow, {"amount": 50})
    assert response.status_code == 200
    assert response.json() == {"decision": "approve", "risk": 0.1}
    assert Run.objects.get(pk=response["X-Flowgate-Run"]).status == "succeeded"


def test_an_async_webhook_answers_202_with_the_run_id(client, workspace, builder_user):
    flow = published_flow(workspace, builder_user, decision_flow(mode="async"))
    response = post(client, flow, {"amount": 50})
    assert response.status_code == 202
    run = Run.objects.get(pk=response.json()["run"])
    assert run.status == "queued" and run.input["body"] == {"amount": 50}


def test_a_wrong_token_is_401_and_creates_no_run(client, workspace, builder_user):
    published_flow(workspace, builder_user, decision_flow())
    response = client.post("/hooks/not-the-token", data="{}", content_type="application/json")
    assert response.status_code == 401
    assert Run.objects.count() == 0


def signed(secret: str, body: bytes, *, message_id: str = "msg_1", at: int | None = None):
    headers = signed_headers(secret, message_id=message_id, body=body, timestamp=at)
    headers.pop("X-Flowgate-Signature")
    return headers


def test_hmac_signatures_are_required_and_checked(client, workspace, builder_user, admin_user):
    flow = published_flow(workspace, builder_user, decision_flow(auth="hmac"))
    secret = flow_webhook_secret_rotate(flow=flow, actor=admin_user)
    body = json.dumps({"amount": 5000}).encode()
    assert post(client, flow, body).status_code == 401
    forged = signed(new_secret(), body)
    assert post(client, flow, body, **forged).status_code == 403
    stale = signed(secret, body, at=int(time.time()) - 600)
    assert post(client, flow, body, **stale).status_code == 403
    # the URL token is no signing key: whoever knows the URL cannot sign (the token is
    # URL-safe base64, which a whsec_ secret is not: its characters are the key's bytes)
    with_token = signed("whsec_" + base64.b64encode(flow.webhook_token.encode()).decode(), body)
    assert post(client, flow, body, **with_token).status_code == 403
    assert Run.objects.count() == 0
    response = post(client, flow, body, **signed(secret, body))
    assert response.status_code == 200
    assert response.json() == {"decision": "reject"}


def test_a_duplicate_delivery_creates_one_run(client, workspace, builder_user):
    flow = published_flow(workspace, builder_user, decision_flow())
    first = post(client, flow, {"amount": 1}, **{"X-Event-Id": "evt-42"})
    second = post(client, flow, {"amount": 1}, **{"X-Event-Id": "evt-42"})
    assert first["X-Flowgate-Run"] == second["X-Flowgate-Run"]
    assert second["X-Flowgate-Duplicate"] == "true"
    assert Run.objects.filter(flow=flow).count() == 1


def test_malformed_json_is_400_and_oversized_is_413(client, workspace, builder_user, settings):
    flow = published_flow(workspace, builder_user, decision_flow())
    malformed = post(client, flow, b"{not json")
    assert malformed.status_code == 400
    assert "not valid JSON" in malformed.json()["error"]["message"]
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    assert post(client, flow, {"pad": "x" * 500}).status_code == 413
    assert Run.objects.count() == 0
