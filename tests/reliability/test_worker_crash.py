"""No lost runs, no duplicate effects: a worker SIGKILLed mid-run, a broker that forgot.

These run real Celery workers against the test database and real Redis, on a queue of their
own so the session's shared worker cannot take their work. The lease is shortened to 3 s so
a crashed worker's run is re-driven quickly by the reconciler.
"""

from __future__ import annotations

import itertools
import time
import uuid

import pytest
import redis
from django.conf import settings
from django.db.models.functions import Now

from apps.runs.blocks import envelope
from apps.runs.models import Run, StepRun
from apps.runs.reconciler import reconcile
from apps.runs.services import run_start
from studio.celery import app as celery_app
from tests.runs.helpers import definition, node, published_flow
from tests.support.http_server import CountingServer
from tests.support.workers import WorkerProcess

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

QUEUE = f"reliability-{uuid.uuid4().hex[:8]}"
WORKER_ENVIRONMENT = {
    "RUN_LEASE_SECONDS": "3",
    "SSRF_ALLOWLIST": "127.0.0.1",
    "CELERY_QUEUE": QUEUE,
}


@pytest.fixture(autouse=True)
def fast_leases(settings, monkeypatch):
    settings.FLOWGATE = {
        **settings.FLOWGATE,
        "RUN_LEASE_SECONDS": 3,
        "SSRF_ALLOWLIST": ["127.0.0.1"],
    }
    monkeypatch.setitem(celery_app.conf, "task_default_queue", QUEUE)


def wait_for(run: Run, predicate, *, timeout: float, redrive: bool = False) -> Run:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if predicate(run):
            return run
        if redrive:
            reconcile()
        time.sleep(0.5)
    raise AssertionError(
        f"run stayed {run.status}; steps: "
        f"{list(StepRun.objects.filter(run=run).values_list('node_id', 'attempt', 'status', 'error'))}"
    )


def test_a_killed_worker_loses_no_run_and_repeats_no_completed_effect(
    admin_user, workspace, test_database_url
):
    with CountingServer() as server:
        flow = published_flow(
            workspace,
            admin_user,
            definition(
                [
                    node("start", "trigger.manual"),
                    node(
                        "charge",
                        "connector.http",
                        method="POST",
                        url=f"{server.url}/charge",
                        body={"n": "trigger.body.n"},
                    ),
                    node(
                        "slow",
                        "connector.http",
                        url=f"{server.url}/slow?seconds=4",
                        timeout_seconds=30,
                    ),
                    node(
                        "done", "transform.set", values={"ok": "steps.charge.output.status == 200"}
                    ),
                ],
                [("start", "charge"), ("charge", "slow"), ("slow", "done")],
            ),
        )
        first = WorkerProcess(
            database_url=test_database_url, environment=WORKER_ENVIRONMENT
        ).start()
        second = None
        try:
            run = run_start(flow=flow, trigger="manual", payload=envelope({"n": 1})).run
            # Kill the worker while /slow holds its request: "charge" has completed by then.
            wait_for(
                run,
                lambda r: any(call["path"].startswith("/slow") for call in server.requests),
                timeout=60,
            )
            first.kill()
            second = WorkerProcess(
                database_url=test_database_url, environment=WORKER_ENVIRONMENT
            ).start()
            run = wait_for(run, lambda r: r.status == "succeeded", timeout=90, redrive=True)
        finally:
            first.stop()
            if second is not None:
                second.stop()
        charges = [request for request in server.requests if request["path"] == "/charge"]
        slow_calls = [request for request in server.requests if request["path"].startswith("/slow")]
    assert run.output == {"ok": True}
    assert len(charges) == 1, "a completed side effect ran again"
    assert len(slow_calls) == 2, "the interrupted idempotent call is retried"
    assert len({call["headers"]["Idempotency-Key"] for call in slow_calls}) == 1
    attempts = StepRun.objects.filter(run=run, node_id="slow").order_by("attempt")
    assert [step.status for step in attempts] == ["failed", "succeeded"]
    assert attempts[0].error["type"] == "Interrupted"


def test_a_broker_that_lost_every_message_loses_no_run(admin_user, workspace, test_database_url):
    flow = published_flow(workspace, admin_user, plus_one_chain())
    runs = [
        run_start(flow=flow, trigger="manual", payload=envelope({"n": n})).run for n in range(3)
    ]
    redis.Redis.from_url(settings.REDIS_URL).delete(QUEUE)  # Redis restarted empty
    Run.objects.filter(pk__in=[r.pk for r in runs]).update(updated_at=time_ago(10))
    worker = WorkerProcess(database_url=test_database_url, environment=WORKER_ENVIRONMENT).start()
    try:
        assert reconcile()["redriven"] == 3
        for run in runs:
            wait_for(run, lambda r: r.status == "succeeded", timeout=60)
    finally:
        worker.stop()
    assert sorted(Run.objects.get(pk=r.pk).output["x"] for r in runs) == [1, 2, 3]


def plus_one_chain(*then: dict) -> dict:
    """A manual trigger, ``calc`` (x = n + 1), then ``then`` in a line."""
    nodes = [
        node("start", "trigger.manual"),
        node("calc", "transform.set", values={"x": "trigger.body.n + 1"}),
        *then,
    ]
    ids = [item["id"] for item in nodes]
    return definition(nodes, list(itertools.pairwise(ids)))


def time_ago(seconds: float):
    from datetime import timedelta

    from django.utils import timezone

    return timezone.now() - timedelta(seconds=seconds)


def test_two_workers_draining_one_burst_run_each_run_once(admin_user, workspace, test_database_url):
    """Concurrent drains skip each other's claimed rows: every run of a burst completes,
    each step once, whichever worker took it."""
    from django.db import transaction

    twice = node("twice", "transform.set", values={"y": "steps.calc.output.x * 2"})
    flow = published_flow(workspace, admin_user, plus_one_chain(twice))
    workers = [
        WorkerProcess(database_url=test_database_url, environment=WORKER_ENVIRONMENT).start()
        for _ in range(2)
    ]
    try:
        with transaction.atomic():
            runs = [
                run_start(flow=flow, trigger="manual", payload=envelope({"n": n})).run
                for n in range(300)
            ]
        deadline = time.monotonic() + 90
        finished = Run.objects.filter(pk__in=[r.pk for r in runs], status="succeeded")
        while finished.count() < len(runs) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        for worker in workers:
            worker.stop()
    outputs = dict(Run.objects.filter(pk__in=[r.pk for r in runs]).values_list("pk", "output"))
    assert [outputs[run.pk] for run in runs] == [{"y": (n + 1) * 2} for n in range(300)]
    assert StepRun.objects.filter(run__in=runs).count() == 300 * 3
    # A run claimed twice would have failed its batch (the engine logs it) before being
    # advanced alone; the outputs above would not show it.
    logs = "".join(worker.log_path.read_text() for worker in workers)
    assert "advancing them one by one" not in logs
    assert "completed by another worker" not in logs


def test_the_runs_of_a_worker_killed_with_a_batch_in_flight_move_again_after_one_short_lease(
    admin_user, workspace, test_database_url
):
    """A worker holds a batch of runs whose calls are in flight, renewing their short
    leases for as long as it works on them; SIGKILLed, its runs are leased no longer than
    one lease, then re-driven and completed by another worker (each interrupted call
    retried once, under the same idempotency key)."""
    lease = int(WORKER_ENVIRONMENT["RUN_LEASE_SECONDS"])
    with CountingServer() as server:
        flow = published_flow(
            workspace,
            admin_user,
            definition(
                [
                    node("start", "trigger.manual"),
                    node("call", "connector.http", url=f"{server.url}/hold", timeout_seconds=30),
                    node("done", "transform.set", values={"n": "trigger.body.n"}),
                ],
                [("start", "call"), ("call", "done")],
            ),
        )
        first = WorkerProcess(database_url=test_database_url, environment=WORKER_ENVIRONMENT)
        first.start()
        second = None
        try:
            runs = [
                run_start(flow=flow, trigger="manual", payload=envelope({"n": n})).run
                for n in range(10)
            ]
            wait_until(lambda: server.holding == 10, timeout=60)  # one batch, all in flight
            time.sleep(lease * 1.5)  # longer than a lease: only renewal keeps them leased
            assert not Run.objects.filter(
                pk__in=[r.pk for r in runs], lease_expires_at__lt=Now()
            ).exists()
            first.kill()
            server.release.set()
            second = WorkerProcess(
                database_url=test_database_url, environment=WORKER_ENVIRONMENT
            ).start()
            for run in runs:
                wait_for(run, lambda r: r.status == "succeeded", timeout=60, redrive=True)
        finally:
            first.stop()
            if second is not None:
                second.stop()
    calls = [request for request in server.requests if request["path"] == "/hold"]
    assert len(calls) == 20
    assert len({call["headers"]["Idempotency-Key"] for call in calls}) == 10
    interrupted = StepRun.objects.filter(run__in=runs, node_id="call", status="failed")
    assert {step.error["type"] for step in interrupted} == {"Interrupted"}


def wait_until(predicate, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("the condition was not met in time")
        time.sleep(0.1)
