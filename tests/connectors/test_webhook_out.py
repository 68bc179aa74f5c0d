"""connector.webhook.out: signed like Flowgate's incoming webhooks, SSRF-guarded, retried
with the same event id."""

from __future__ import annotations

import json

import pytest

from apps.connectors.services import connection_create, connection_test, egress_settings_save
from apps.connectors.webhook.signing import SignatureRejected, verify
from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.models import StepRun
from apps.runs.services import run_start
from tests.runs.helpers import definition, node, published_flow
from tests.support.http_server import CountingServer

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def verify_request(secret: str, request: dict) -> str:
    """Check a received request as Flowgate's own webhook endpoint does."""
    headers = {name.lower(): value for name, value in request["headers"].items()}
    return verify(secret, headers, request["body"].encode())


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
    verify_request(SECRET, request)
    with pytest.raises(SignatureRejected):
        verify_request("whsec_YW5vdGhlci1zZWNyZXQtb2YtMzItYnl0ZXMhISE=", request)
    assert request["headers"]["webhook-id"] == json.loads(body)["id"]
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
        verify_request(SECRET, request)


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
    verify_request(SECRET, server.requests[0])


def webhook_flow_to(url: str) -> dict:
    flow = webhook_flow()
    flow["nodes"][1]["config"]["url"] = url
    return flow


@pytest.mark.parametrize(
    "override",
    [
        "http://127.0.0.2:{port}/hooks/in",  # another host
        "{base}/../admin",  # a path outside the connection's, spelled to look inside
        "https://127.0.0.1:{port}/hooks/in",  # another scheme
        "http://127.0.0.1:1/hooks/in",  # another port
    ],
)
def test_the_signing_secret_signs_only_requests_to_the_connections_url(
    workspace, admin_user, allow_loopback, override
):
    with CountingServer() as server, CountingServer() as elsewhere:
        receiver(workspace, admin_user, f"{server.url}/hooks")
        url = override.format(port=elsewhere.url.rsplit(":", 1)[1], base=f"{server.url}/hooks")
        run = run_flow(workspace, admin_user, webhook_flow_to(url), {"claim": "C-1"})
        assert run.status == "failed"
        assert "is not under the connection's URL" in run.error["message"]
        assert server.requests == [] and elsewhere.requests == []


def test_a_url_under_the_connections_url_is_signed_and_sent(workspace, admin_user, allow_loopback):
    with CountingServer() as server:
        receiver(workspace, admin_user, f"{server.url}/hooks")
        flow = webhook_flow_to(f"{server.url}/hooks/claims?kind=decided")
        run = run_flow(workspace, admin_user, flow, {"claim": "C-2"})
    assert run.status == "succeeded", run.error
    [request] = server.requests
    verify_request(SECRET, request)


def test_a_redirect_is_not_followed_so_the_signed_event_reaches_no_other_host(
    workspace, admin_user, allow_loopback
):
    with CountingServer() as server, CountingServer() as elsewhere:
        receiver(workspace, admin_user, f"{server.url}/redirect?to={elsewhere.url}/steal")
        run = run_flow(workspace, admin_user, webhook_flow(), {"claim": "C-3"})
    assert run.status == "failed"
    assert "answered 302" in run.error["message"]
    assert elsewhere.requests == []


def test_the_workspaces_egress_allow_list_admits_the_receiver(workspace, admin_user):
    with CountingServer() as server:
        receiver(workspace, admin_user, f"{server.url}/hooks/in")
        refused = run_flow(workspace, admin_user, webhook_flow(), {"claim": "C-4"})
        egress_settings_save(workspace=workspace, actor=admin_user, allowlist=["127.0.0.1"])
        allowed = run_flow(workspace, admin_user, webhook_flow(), {"claim": "C-5"})
    assert refused.status == "failed" and "refused" in refused.error["message"]
    assert allowed.status == "succeeded", allowed.error
    assert len(server.requests) == 1
