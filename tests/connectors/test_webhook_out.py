"""connector.webhook.out: signed like Flowgate's incoming webhooks, SSRF-guarded, retried
with the same event id."""

from __future__ import annotations

import json

import pytest

from apps.connectors.services import connection_create, connection_test
from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.models import StepRun
from apps.runs.services import run_start
from apps.runs.triggers import WebhookRejected, verify_signature
from tests.runs.helpers import definition, node, published_flow
from tests.support.http_server import CountingServer

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "whsec-5a6b7c8d"


@pytest.fixture
def allow_loopback(settings):
    settings.FLOWGATE = {**settings.FLOWGATE, "SSRF_ALLOWLIST": ["127.0.0.1"]}


def receiver(workspace, actor, url):
    return connection_create(
        workspace=workspace,
        actor=actor,
        name="partner",
        type="webhook",
        config={"url": url},
        secrets={"signing_secret": SECRET},
    )


def webhook_flow(**extra) -> dict:
    return definition(
        [
            node("start", "trigger.manual"),
            {
                **node(
                    "notify",
                    "connector.webhook.out",
                    connection="partner",
                    event="claim.decided",
                    payload={"claim": "trigger.body.claim"},
                ),
                **extra,
            },
        ],
        [("start", "notify")],
    )


def run_flow(workspace, actor, flow_definition, body):
    flow = published_flow(workspace, actor, flow_definition)
    run = run_start(flow=flow, trigger="manual", payload=envelope(body), enqueue=False).run
    advance(run.id)
    run.refresh_from_db()
    return run


def test_the_event_is_signed_so_a_flowgate_webhook_would_accept_it(
    workspace, admin_user, allow_loopback
):
    with CountingServer() as server:
        receiver(workspace, admin_user, f"{server.url}/hooks/in")
        run = run_flow(workspace, admin_user, webhook_flow(), {"claim": "C-7"})
    assert run.status == "succeeded", run.error
    [request] = server.requests
    body = request["body"].encode()
    verify_signature(SECRET, request["headers"]["X-Flowgate-Signature"], body)
    with pytest.raises(WebhookRejected):
        verify_signature("another-secret", request["headers"]["X-Flowgate-Signature"], body)
    event = json.loads(body)
    assert event["type"] == "claim.decided" and event["data"] == {"claim": "C-7"}
    assert request["headers"]["X-Event-Id"] == request["headers"]["Idempotency-Key"] == event["id"]
    step = StepRun.objects.get(run=run, node_id="notify")
    assert SECRET not in json.dumps(step.output)


def test_a_server_error_is_retryable_and_the_retry_sends_the_same_event_id(
    workspace, admin_user, allow_loopback
):
    # The block itself, as the engine runs each attempt (the engine's retry scheduling is
    # covered in tests/runs): 503 is a retryable error, the next attempt is the same event.
    from apps.blocks.base import BlockError
    from apps.connectors.services import WorkspaceConnections
    from apps.connectors.webhook.block import WebhookOutBlock, WebhookOutConfig
    from tests.blocks.fakes import FakeContext

    with CountingServer(statuses=[503, 200]) as server:
        receiver(workspace, admin_user, server.url)
        ctx = FakeContext(
            scope={"trigger": {"body": {"claim": "C-8"}}},
            services={"connections": WorkspaceConnections(workspace.id)},
        )
        config = WebhookOutConfig(connection="partner", payload={"claim": "trigger.body.claim"})
        with pytest.raises(BlockError) as error:
            WebhookOutBlock().execute(ctx, config, None)
        assert error.value.retryable and "503" in error.value.message
        ctx.attempt = 2
        result = WebhookOutBlock().execute(ctx, config, None)
    assert result.output["status"] == 200
    assert len(server.requests) == 2
    assert len({request["headers"]["X-Event-Id"] for request in server.requests}) == 1
    for request in server.requests:
        verify_signature(
            SECRET, request["headers"]["X-Flowgate-Signature"], request["body"].encode()
        )


def test_an_internal_address_is_refused_by_the_ssrf_guard(workspace, admin_user):
    receiver(workspace, admin_user, "http://169.254.169.254/latest/meta-data")
    run = run_flow(workspace, admin_user, webhook_flow(), {"claim": "C-9"})
    assert run.status == "failed" and "refused" in run.error["message"]


def test_the_test_button_sends_a_signed_ping(workspace, admin_user, allow_loopback):
    with CountingServer(statuses=[200, 401]) as server:
        connection = receiver(workspace, admin_user, server.url)
        assert connection_test(connection=connection).ok
        refused = connection_test(connection=connection)
    assert refused.stage == "auth" and "authentication failed" in refused.message
    ping = server.requests[0]
    verify_signature(SECRET, ping["headers"]["X-Flowgate-Signature"], ping["body"].encode())
