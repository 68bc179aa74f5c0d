"""A flow's ``concurrency.limit`` counts its running runs across the whole cluster: two real
worker processes, each draining, never run more of the flow's runs at once than the limit,
while a flow without a limit beside it runs freely. A dead worker's slots free themselves
with its leases."""

from __future__ import annotations

import time
import uuid

import pytest

from apps.runs.blocks import envelope
from apps.runs.engine import claims
from apps.runs.models import Run, RunStatus
from apps.runs.services import run_start
from apps.runs.tasks import drain
from studio.celery import app as celery_app
from tests.runs.helpers import definition, node, published_flow
from tests.support.http_server import CountingServer
from tests.support.workers import WorkerProcess

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

QUEUE = f"concurrency-{uuid.uuid4().hex[:8]}"
# One run per claim: both workers get some of the limited flow's runs.
WORKER_ENVIRONMENT = {"SSRF_ALLOWLIST": "127.0.0.1", "CELERY_QUEUE": QUEUE, "DRAIN_BATCH_SIZE": "1"}


@pytest.fixture(autouse=True)
def own_queue(settings, monkeypatch):
    settings.FLOWGATE = {**settings.FLOWGATE, "SSRF_ALLOWLIST": ["127.0.0.1"]}
    monkeypatch.setitem(celery_app.conf, "task_default_queue", QUEUE)


def limited_flow(workspace, user, url: str, limit: int | None, name: str):
    flow_definition = definition(
        [
            node("start", "trigger.manual"),
            {**node("call", "connector.http", url=url, timeout_seconds=30)},
        ],
        [("start", "call")],
        name=name,
    )
    if limit is not None:
        flow_definition["concurrency"] = {"limit": limit}
    return published_flow(workspace, user, flow_definition, name=name)


def queue(flow, count: int) -> list:
    return [
        run_start(flow=flow, trigger="manual", payload=envelope({"n": n}), enqueue=False).run.pk
        for n in range(count)
    ]


def wait_until(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


def test_two_workers_never_run_more_of_a_flows_runs_at_once_than_its_limit(
    workspace, admin_user, test_database_url
):
    with CountingServer() as server:
        limited = limited_flow(workspace, admin_user, f"{server.url}/hold", 2, "Two at a time")
        free = limited_flow(workspace, admin_user, f"{server.url}/free", None, "Unlimited")
        limited_runs, free_runs = queue(limited, 6), queue(free, 4)
        workers = [
            WorkerProcess(database_url=test_database_url, environment=WORKER_ENVIRONMENT).start()
            for _ in range(2)
        ]
        try:
            for _ in workers:  # a drain for each worker: both claim at once
                drain.apply_async()
            wait_until(lambda: server.holding >= 2, timeout=60)
            # The unlimited flow is not held up by the limited one's full slots.
            wait_until(
                lambda: (
                    Run.objects.filter(pk__in=free_runs, status=RunStatus.SUCCEEDED).count() == 4
                ),
                timeout=60,
            )
            time.sleep(2)  # either worker would have started a third call by now
            assert server.holding == 2
            assert Run.objects.filter(pk__in=limited_runs, status=RunStatus.RUNNING).count() == 2
            server.release.set()
            for _ in workers:
                drain.apply_async()
            wait_until(
                lambda: (
                    Run.objects.filter(pk__in=limited_runs, status=RunStatus.SUCCEEDED).count() == 6
                ),
                timeout=90,
            )
        finally:
            for worker in workers:
                worker.stop()
        assert server.most_held == 2


def test_a_dead_holders_slot_frees_itself_when_its_lease_runs_out(workspace, admin_user):
    flow = limited_flow(workspace, admin_user, "http://127.0.0.1:9/never", 1, "One at a time")
    first, second = queue(flow, 2)
    [held] = claims.claim_queued("dead-worker", 10)
    assert held.pk == first
    assert claims.claim_queued("live-worker", 10) == []  # the flow is full
    assert claims.claim(second, "live-worker") is None
    Run.objects.filter(pk=first).update(lease_expires_at=held.database_now)  # it ran out
    [taken] = claims.claim_queued("live-worker", 10)
    assert taken.pk == second
