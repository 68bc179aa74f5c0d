"""Async webhooks through the web server's fast path (studio/ingress.py, apps/runs/ingress.py):
each run committed before its 202, concurrent deliveries saved together, and everything the
fast path does not take answered by the view exactly as before."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from apps.runs.models import Run, RunStatus
from studio.asgi import application
from tests.runs.helpers import definition, node, published_flow
from tests.runs.w1 import w1_flow

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _threads_let_go_of_connections():
    """The web's threads close their connections after each request, as with the pool, so
    none is left open on the test database."""
    from django.db import connections

    database = connections.settings["default"]
    kept, database["CONN_MAX_AGE"] = database["CONN_MAX_AGE"], 0
    yield
    database["CONN_MAX_AGE"] = kept


def webhook_flow(mode: str = "async", auth: str = "token") -> dict:
    return definition(
        [
            node("hook", "trigger.webhook", mode=mode, auth=auth),
            node("reply", "flow.respond", body={"echo": "trigger.body.n"}),
        ],
        [("hook", "reply")],
    )


def deliver(token: str, bodies: list, **headers: str) -> list[httpx.Response]:
    """POST each body at once to the ASGI application, as concurrent callers would."""

    async def send() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return list(
                await asyncio.gather(
                    *(
                        client.post(
                            f"/hooks/{token}",
                            content=body if isinstance(body, bytes) else json.dumps(body),
                            headers={"content-type": "application/json", **headers},
                        )
                        for body in bodies
                    )
                )
            )

    return asyncio.run(send())


def test_concurrent_async_webhooks_each_get_202_after_their_run_is_committed(
    workspace, builder_user
):
    flow = published_flow(workspace, builder_user, webhook_flow())
    responses = deliver(flow.webhook_token, [{"n": index} for index in range(40)])
    assert {response.status_code for response in responses} == {202}
    run_ids = {response.headers["X-Flowgate-Run"] for response in responses}
    assert len(run_ids) == 40
    runs = Run.objects.filter(pk__in=run_ids)
    assert runs.count() == 40  # committed before the answer
    assert sorted(run.input["body"]["n"] for run in runs) == list(range(40))
    first = responses[0]
    assert first.json()["status"] == RunStatus.QUEUED
    assert first.headers["Location"] == f"http://testserver{first.json()['url']}"
    assert first.headers["X-Content-Type-Options"] == "nosniff"


def test_a_repeated_idempotency_key_is_answered_with_the_first_run(workspace, builder_user):
    flow = published_flow(workspace, builder_user, webhook_flow())
    responses = deliver(flow.webhook_token, [{"n": 1}] * 5, **{"Idempotency-Key": "evt-7"})
    assert len({response.headers["X-Flowgate-Run"] for response in responses}) == 1
    assert sum(1 for r in responses if r.headers.get("X-Flowgate-Duplicate") == "true") == 4
    assert Run.objects.filter(flow=flow).count() == 1


def test_a_sync_webhook_is_answered_by_the_flow_as_before(workspace, builder_user):
    flow = published_flow(workspace, builder_user, webhook_flow(mode="sync"))
    [response] = deliver(flow.webhook_token, [{"n": 3}])
    assert response.status_code == 200
    assert response.json() == {"echo": 3}


def test_an_unknown_token_and_a_bad_body_are_refused_with_a_message(workspace, builder_user):
    flow = published_flow(workspace, builder_user, webhook_flow())
    [unknown] = deliver("no-such-token", [{"n": 1}])
    [bad] = deliver(flow.webhook_token, [b"{not json"])
    assert unknown.status_code == 401
    assert bad.status_code == 400
    assert "cannot be used" in bad.json()["error"]["message"]
    assert not Run.objects.filter(flow=flow).exists()


def test_deliveries_over_the_rate_limit_are_429_and_start_nothing(
    workspace, builder_user, settings
):
    settings.FLOWGATE = {**settings.FLOWGATE, "RATE_LIMITS": {"webhook": "3/60"}}
    flow = published_flow(workspace, builder_user, webhook_flow())
    responses = deliver(flow.webhook_token, [{"n": index} for index in range(6)])
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [202, 202, 202, 429, 429, 429]
    assert all(r.headers["Retry-After"] for r in responses if r.status_code == 429)
    assert Run.objects.filter(flow=flow).count() == 3


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_a_burst_across_a_windows_end_is_limited_as_one(
    workspace, builder_user, settings, monkeypatch, mode
):
    from apps.core import ratelimit

    settings.FLOWGATE = {**settings.FLOWGATE, "RATE_LIMITS": {"webhook": "3/60"}}
    flow = published_flow(workspace, builder_user, webhook_flow(mode=mode))
    window_end = 1_800_000_000.0  # a multiple of 60
    monkeypatch.setattr(ratelimit, "clock", lambda: window_end - 0.5)
    before = deliver(flow.webhook_token, [{"n": n} for n in range(3)])
    monkeypatch.setattr(ratelimit, "clock", lambda: window_end + 0.5)
    after = deliver(flow.webhook_token, [{"n": n} for n in range(3, 6)])
    assert {r.status_code for r in before} == {200 if mode == "sync" else 202}
    assert [r.status_code for r in after] == [429] * 3
    # 3 * (1 - 0.5/60) of the last window still counts: one more goes ahead once that
    # falls to 2, a third into this window.
    assert {r.headers["Retry-After"] for r in after} == {"20"}
    assert Run.objects.filter(flow=flow).count() == 3


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_a_repeated_idempotency_key_is_counted_once_by_the_rate_limit(
    workspace, builder_user, settings, mode
):
    settings.FLOWGATE = {**settings.FLOWGATE, "RATE_LIMITS": {"webhook": "3/60"}}
    flow = published_flow(workspace, builder_user, webhook_flow(mode=mode))
    first = deliver(flow.webhook_token, [{"n": 1}], **{"Idempotency-Key": f"evt-{mode}"})
    repeats = deliver(flow.webhook_token, [{"n": 1}] * 4, **{"Idempotency-Key": f"evt-{mode}"})
    assert [r.status_code for r in first + repeats] == [first[0].status_code] * 5
    assert first[0].status_code in (200, 202)
    others = [deliver(flow.webhook_token, [{"n": n}])[0].status_code for n in (2, 3, 4)]
    assert others[:2] == [first[0].status_code] * 2  # the repeats used none of the 3
    assert others[2] == 429
    assert Run.objects.filter(flow=flow).count() == 3


def test_a_flood_of_one_idempotency_key_still_meets_the_rate_limit(
    workspace, builder_user, settings
):
    from apps.core.ratelimit import FREE_REPEATS

    settings.FLOWGATE = {**settings.FLOWGATE, "RATE_LIMITS": {"webhook": "3/60"}}
    flow = published_flow(workspace, builder_user, webhook_flow())
    flood = 1 + FREE_REPEATS + 3
    responses = [
        deliver(flow.webhook_token, [{"n": 1}], **{"Idempotency-Key": "evt-flood"})[0]
        for _ in range(flood)
    ]
    assert [r.status_code for r in responses[:-1]] == [202] * (flood - 1)
    assert responses[-1].status_code == 429
    assert Run.objects.filter(flow=flow).count() == 1


def fast_path_delivery(token: str, n: int):
    from apps.runs.ingress import Delivery

    return Delivery(
        token=token,
        body=json.dumps({"n": n}).encode(),
        content_type="application/json",
        headers={"content-type": "application/json"},
        query={},
    )


def test_a_caller_gone_before_its_answer_does_not_stop_the_batcher(workspace, builder_user):
    from apps.runs.ingress import batcher

    flow = published_flow(workspace, builder_user, webhook_flow())

    def delivery(n: int):
        return fast_path_delivery(flow.webhook_token, n)

    gone = delivery(1)
    gone.answer.cancel()  # what the event loop does to a request it abandons
    batcher.submit(gone)
    answer = batcher.submit(delivery(2)).result(timeout=60)
    assert answer is not None and answer.status == 202
    assert Run.objects.filter(flow=flow, input__body__n=2).exists()


def test_callers_awaiting_on_the_event_loop_each_get_their_own_answer(workspace, builder_user):
    """The fast path awaits its verdict on the loop (``Batcher.verdict``); a caller that
    gave up (its request cancelled) costs the others of its batch nothing."""
    from apps.runs.ingress import batcher

    flow = published_flow(workspace, builder_user, webhook_flow())

    async def callers():
        gone = asyncio.ensure_future(batcher.verdict(fast_path_delivery(flow.webhook_token, 1)))
        await asyncio.sleep(0)
        gone.cancel()
        waiting = [batcher.verdict(fast_path_delivery(flow.webhook_token, n)) for n in (2, 3)]
        return await asyncio.wait_for(asyncio.gather(*waiting), timeout=60)

    answers = asyncio.run(callers())
    assert [answer.status for answer in answers] == [202, 202]
    runs = {answer.run.pk: answer.run.input["body"]["n"] for answer in answers}
    assert dict(Run.objects.filter(pk__in=runs).values_list("pk", "input__body__n")) == runs


def test_a_sync_webhook_is_answered_with_the_headers_of_every_response(workspace, builder_user):
    """Deliveries skip the middleware a machine's POST does not need (studio/handlers.py):
    the security, framing and CSP headers stay, and no session or CSRF cookie is set."""
    flow = published_flow(workspace, builder_user, webhook_flow(mode="sync"))
    [response] = deliver(flow.webhook_token, [{"n": 3}])
    assert response.json() == {"echo": 3}
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"]
    assert response.headers["Content-Security-Policy"]
    assert "set-cookie" not in response.headers


def test_a_delivery_meets_the_middleware_of_settings_less_those_it_does_not_need(settings):
    from studio.handlers import NOT_FOR_WEBHOOKS, WebhookChain

    chain = WebhookChain()
    kept = [path for path in settings.MIDDLEWARE if path not in NOT_FOR_WEBHOOKS]
    assert kept == [
        "django.middleware.security.SecurityMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
        "csp.middleware.CSPMiddleware",
        "studio.outage.DatabaseOutageMiddleware",
    ]
    # The outage answer (a JSON 503 to a machine) is among its exception handlers.
    assert [handler.__self__.__class__.__name__ for handler in chain._exception_middleware] == [
        "DatabaseOutageMiddleware"
    ]


# --- sync webhooks run in the web process (``InlineRuns``) -------------------------------


def calling_flow(workspace, user, url: str, name: str, **hook_settings):
    """A sync webhook whose flow calls ``url``, then answers with the call's status."""
    return published_flow(
        workspace,
        user,
        definition(
            [
                node("hook", "trigger.webhook", mode="sync", **hook_settings),
                node("call", "connector.http", url=url, timeout_seconds=20),
                node("reply", "flow.respond", body={"status": "steps.call.output.status"}),
            ],
            [("hook", "call"), ("call", "reply")],
            name=name,
        ),
        name=name,
    )


def test_concurrent_sync_webhooks_each_get_their_own_flows_response_from_the_fast_path(
    workspace, builder_user, monkeypatch
):
    def not_the_view(**_):
        raise AssertionError("the view ran a delivery the fast path takes")

    monkeypatch.setattr("apps.runs.webhooks.webhook_deliver", not_the_view)
    flow = published_flow(workspace, builder_user, webhook_flow(mode="sync"))
    responses = deliver(flow.webhook_token, [{"n": index} for index in range(24)])
    assert [response.json() for response in responses] == [{"echo": n} for n in range(24)]
    assert {response.status_code for response in responses} == {200}
    runs = Run.objects.filter(pk__in={response.headers["X-Flowgate-Run"] for response in responses})
    assert runs.count() == 24
    assert {run.status for run in runs} == {RunStatus.SUCCEEDED}
    assert {run.lease_owner for run in runs} == {""}
    headers = responses[0].headers
    assert headers["X-Frame-Options"] == "DENY" and headers["Content-Security-Policy"]


def test_a_sync_webhook_waiting_on_its_call_out_holds_up_no_other_delivery(
    workspace, admin_user, loopback_allowed, server
):
    """The batcher's thread goes on taking deliveries while a sync run's call is out: an
    echo flow is answered while the held flow's API still holds its call."""
    held = calling_flow(workspace, admin_user, f"{server.url}/hold", "Held")
    echo = published_flow(workspace, admin_user, webhook_flow(mode="sync"), name="Echo")

    async def callers():
        waiting = asyncio.ensure_future(asyncio.to_thread(deliver, held.webhook_token, [{}]))
        while server.holding == 0:
            await asyncio.sleep(0.02)
        [answer] = await asyncio.to_thread(deliver, echo.webhook_token, [{"n": 5}])
        still_held = not waiting.done()
        server.release.set()
        [held_answer] = await asyncio.wait_for(waiting, timeout=60)
        return answer, still_held, held_answer

    answer, still_held, held_answer = asyncio.run(callers())
    assert answer.json() == {"echo": 5} and still_held
    assert held_answer.status_code == 200 and held_answer.json() == {"status": 200}
    run = Run.objects.get(pk=held_answer.headers["X-Flowgate-Run"])
    assert run.status == RunStatus.SUCCEEDED


def test_a_sync_webhook_over_its_budget_is_answered_202_and_left_to_a_worker(
    workspace, admin_user, loopback_allowed, server
):
    slow = calling_flow(
        workspace, admin_user, f"{server.url}/slow?seconds=1.5", "Slow", timeout_seconds=1
    )
    [response] = deliver(slow.webhook_token, [{}])
    assert response.status_code == 202
    assert response.json()["status"] == RunStatus.RUNNING
    run = Run.objects.get(pk=response.json()["run"])
    assert run.status == RunStatus.RUNNING and run.lease_owner == ""
    assert run.steps.get(node_id="call").status == "succeeded"  # recorded, not lost
    assert not run.steps.filter(node_id="reply").exists()


def test_a_repeated_idempotency_key_on_a_sync_webhook_is_answered_with_the_first_run(
    workspace, builder_user
):
    flow = published_flow(workspace, builder_user, webhook_flow(mode="sync"))
    together = deliver(flow.webhook_token, [{"n": 1}] * 4, **{"Idempotency-Key": "evt-9"})
    [later] = deliver(flow.webhook_token, [{"n": 2}], **{"Idempotency-Key": "evt-9"})
    answers = [*together, later]
    assert len({response.headers["X-Flowgate-Run"] for response in answers}) == 1
    assert [response.json() for response in answers] == [{"echo": 1}] * 5
    assert later.headers["X-Flowgate-Duplicate"] == "true"
    assert Run.objects.filter(flow=flow).count() == 1


def test_a_sync_webhook_whose_flow_waits_goes_to_the_workers_as_before(
    workspace, builder_user, celery_worker
):
    review = definition(
        [
            node("hook", "trigger.webhook", mode="sync", timeout_seconds=30),
            node("review", "human.approval", title="Check"),
            node("reply", "flow.respond", body={"ok": "true"}),
        ],
        [("hook", "review"), ("review", "reply", "approved")],
    )
    flow = published_flow(workspace, builder_user, review)
    for _ in range(2):  # the second: the process knows it is the view's
        [response] = deliver(flow.webhook_token, [{}])
        assert response.status_code == 202
        assert Run.objects.get(pk=response.json()["run"]).status == RunStatus.WAITING


def test_the_batcher_thread_ends_at_exit_and_a_later_delivery_starts_another(
    workspace, builder_user
):
    """At exit (``atexit``) the thread ends, so the policy engines it compiled are dropped
    on it (regorus refuses any other thread, which the interpreter's teardown was)."""
    from apps.runs.ingress import batcher

    flow = w1_flow(workspace, builder_user)
    [before] = deliver(flow.webhook_token, [{"amount": 50, "customer": "c"}])
    thread = batcher._thread
    assert before.json() == {"decision": "approve"} and thread is not None

    batcher._stop()
    assert not thread.is_alive()
    [after] = deliver(flow.webhook_token, [{"amount": 5000, "customer": "c"}])
    assert after.json() == {"decision": "reject"}
    assert batcher._thread is not None and batcher._thread is not thread
