"""connector.http: SSRF guard, retries with backoff, idempotency and correlation headers."""

from __future__ import annotations

import pytest
from django.db.models.functions import Now

from apps.core.http import SSRFError, check_url
from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.models import Run, StepRun
from apps.runs.services import run_start
from tests.runs.helpers import definition, node, published_flow
from tests.support.http_server import CountingServer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost:8000/",
        "http://10.1.2.3/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://100.64.0.1/",
        "http://192.168.1.1/",
        "http://[::ffff:127.0.0.1]/",
        "file:///etc/passwd",
        "gopher://example.com/",
    ],
)
def test_the_ssrf_guard_refuses_internal_destinations(url):
    with pytest.raises(SSRFError):
        check_url(url)


def test_an_admin_allow_list_lets_a_private_host_through(settings):
    settings.FLOWGATE = {**settings.FLOWGATE, "SSRF_ALLOWLIST": ["127.0.0.0/8"]}
    check_url("http://127.0.0.1:9/")


def http_flow(url: str, **extra) -> dict:
    return definition(
        [
            node("start", "trigger.manual"),
            {
                **node(
                    "call", "connector.http", method="POST", url=url, body={"n": "trigger.body.n"}
                ),
                **extra,
            },
        ],
        [("start", "call")],
    )


def test_a_redirect_to_an_internal_address_is_refused(workspace, admin_user, settings):
    with CountingServer() as server:
        # Only the first hop is allow-listed; the redirect target (metadata) is not.
        settings.FLOWGATE = {**settings.FLOWGATE, "SSRF_ALLOWLIST": ["127.0.0.1"]}
        flow = published_flow(
            workspace,
            admin_user,
            http_flow(f"{server.url}/redirect?to=http://169.254.169.254/"),
        )
        run = run_start(flow=flow, trigger="manual", payload=envelope({"n": 1}), enqueue=False).run
        advance(run.id)
        run.refresh_from_db()
    assert run.status == "failed"
    assert "169.254.169.254" in run.error["message"]


def test_transient_errors_are_retried_with_backoff_then_succeed(workspace, admin_user, settings):
    settings.FLOWGATE = {**settings.FLOWGATE, "SSRF_ALLOWLIST": ["127.0.0.1"]}
    with CountingServer(statuses=[503, 200]) as server:
        flow = published_flow(
            workspace,
            admin_user,
            # A backoff long enough that the retry is never due within the first advance
            # (the engine runs due retries inline); the test then makes it due itself.
            http_flow(f"{server.url}/charge", retry={"max_attempts": 3, "backoff_seconds": 40}),
        )
        run = run_start(flow=flow, trigger="manual", payload=envelope({"n": 7}), enqueue=False).run
        advance(run.id)
        first = StepRun.objects.get(run=run, node_id="call", attempt=1)
        retry = StepRun.objects.get(run=run, node_id="call", attempt=2)
        assert first.error["class"] == "transient"
        assert retry.status == "retry_scheduled" and retry.next_attempt_at is not None
        run.refresh_from_db()
        assert run.wake_at is not None and run.status == "running"
        StepRun.objects.filter(pk=retry.pk).update(next_attempt_at=Now())  # time passes
        advance(run.id)
        run.refresh_from_db()
        assert run.status == "succeeded"
        keys = {request["headers"]["Idempotency-Key"] for request in server.requests}
        correlation = {request["headers"]["X-Correlation-ID"] for request in server.requests}
    assert len(server.requests) == 2 and len(keys) == 1  # the same key on every attempt
    assert correlation == {run.correlation_id}


def test_a_cookie_one_run_received_is_never_sent_by_another(workspace, admin_user, settings):
    """HTTP steps reuse a thread's kept-alive client (shared by every workspace with the
    same allow-list); what a server set for one run must not ride along on the next call,
    whoever makes it."""
    settings.FLOWGATE = {**settings.FLOWGATE, "SSRF_ALLOWLIST": ["127.0.0.1"]}
    with CountingServer() as server:
        setter = published_flow(workspace, admin_user, http_flow(f"{server.url}/set-cookie"))
        reader = published_flow(workspace, admin_user, http_flow(f"{server.url}/echo"), "Reader")
        for flow in (setter, reader, reader, reader):
            run = run_start(flow=flow, trigger="manual", payload=envelope({"n": 1}), enqueue=False)
            advance(run.run.id)
    assert [request["path"] for request in server.requests] == ["/set-cookie"] + ["/echo"] * 3
    assert all("Cookie" not in request["headers"] for request in server.requests[1:])


def test_a_client_error_is_permanent(workspace, admin_user, settings):
    settings.FLOWGATE = {**settings.FLOWGATE, "SSRF_ALLOWLIST": ["127.0.0.1"]}
    with CountingServer(statuses=[422]) as server:
        flow = published_flow(
            workspace,
            admin_user,
            http_flow(f"{server.url}/x", retry={"max_attempts": 3}),
        )
        run = run_start(flow=flow, trigger="manual", payload=envelope({"n": 1}), enqueue=False).run
        advance(run.id)
    run.refresh_from_db()
    assert run.status == "failed"
    assert len(server.requests) == 1
    assert "422" in run.error["message"]


def test_a_dry_run_shows_the_request_without_sending_it(workspace, admin_user, settings):
    settings.FLOWGATE = {**settings.FLOWGATE, "SSRF_ALLOWLIST": ["127.0.0.1"]}
    with CountingServer() as server:
        flow = published_flow(workspace, admin_user, http_flow(f"{server.url}/x"))
        run = run_start(
            flow=flow,
            trigger="test",
            payload=envelope({"n": 3}),
            enqueue=False,
            dry_run=True,
            draft_definition=flow.draft_definition,
        ).run
        advance(run.id)
    call = StepRun.objects.get(run=run, node_id="call")
    assert server.requests == []
    assert call.output["request"]["json"] == {"n": 3}
    assert Run.objects.get(pk=run.pk).status == "succeeded"


def test_an_api_that_does_not_answer_in_time_is_a_transient_error(workspace, admin_user, settings):
    settings.FLOWGATE = {**settings.FLOWGATE, "SSRF_ALLOWLIST": ["127.0.0.1"]}
    with CountingServer() as server:
        call = node(
            "call", "connector.http", url=f"{server.url}/slow?seconds=3", timeout_seconds=0.3
        )
        flow = published_flow(
            workspace,
            admin_user,
            definition(
                [
                    node("start", "trigger.manual"),
                    {**call, "retry": {"max_attempts": 2, "backoff_seconds": 40}},
                ],
                [("start", "call")],
            ),
        )
        run = run_start(flow=flow, trigger="manual", payload=envelope({}), enqueue=False).run
        advance(run.id)
    first = StepRun.objects.get(run=run, node_id="call", attempt=1)
    assert first.error["class"] == "transient"
    assert "did not answer within 0.3 s" in first.error["message"]
    assert StepRun.objects.get(run=run, node_id="call", attempt=2).status == "retry_scheduled"
