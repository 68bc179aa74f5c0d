"""Draining queued runs: many runs per claim, per transaction and per Celery message."""

from __future__ import annotations

import re
import threading
import time
from datetime import timedelta

import kombu.exceptions
import psycopg
import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.blocks.registry import registry
from apps.runs import tasks
from apps.runs.blocks import envelope
from apps.runs.engine import advance, drain_queued, executor
from apps.runs.engine.batch import Batch
from apps.runs.models import Run, StepRun
from apps.runs.services import run_start
from tests.runs.helpers import chain, definition, node, published_flow, record_s0_elsewhere

pytestmark = pytest.mark.django_db(transaction=True)


def queue_runs(flow, count: int) -> list[Run]:
    return [
        run_start(flow=flow, trigger="manual", payload=envelope({"n": i}), enqueue=False).run
        for i in range(count)
    ]


def drain_now(*, batch_size: int = 25, seconds: float = 30) -> tuple[int, list[str]]:
    calls: list[str] = []
    advanced = drain_queued(
        wake_another=lambda: calls.append("wake"),
        batch_size=batch_size,
        seconds=seconds,
    )
    return advanced, calls


def statuses(runs: list[Run]) -> list[str]:
    by_id = dict(Run.objects.filter(pk__in=[r.pk for r in runs]).values_list("pk", "status"))
    return [by_id[run.pk] for run in runs]


@pytest.fixture
def flow(workspace, builder_user):
    return published_flow(workspace, builder_user, chain(2))


def test_a_batch_of_runs_costs_the_round_trips_of_one_run(flow):
    queue_runs(flow, 1)
    drain_now()  # a process reads a version's definition once
    counts = []
    for count in (2, 20):
        runs = queue_runs(flow, count)
        with CaptureQueriesContext(connection) as queries:
            advanced, _ = drain_now()
        counts.append(len(queries.captured_queries))
        assert advanced == count
        assert statuses(runs) == ["succeeded"] * count
        assert [Run.objects.get(pk=run.pk).output for run in runs] == [
            {"n": index + 1} for index in range(count)
        ]
    assert StepRun.objects.filter(status="succeeded").count() == (1 + 2 + 20) * 3
    assert counts[0] == counts[1]
    released = Run.objects.exclude(lease_owner="").count()
    assert released == 0


def test_a_full_batch_asks_another_drain_to_share_the_queue(flow):
    runs = queue_runs(flow, 5)
    advanced, calls = drain_now(batch_size=2)
    assert advanced == 5
    assert calls == ["wake", "wake"]  # after each full batch, not after the last
    assert statuses(runs) == ["succeeded"] * 5


def test_a_drain_out_of_time_claims_no_more_and_leaves_the_rest_as_it_found_them(flow):
    runs = queue_runs(flow, 4)
    advanced, calls = drain_now(batch_size=2, seconds=0)
    assert advanced == 2 and calls[-1] == "wake"
    assert statuses(runs) == ["succeeded", "succeeded", "queued", "queued"]
    left = Run.objects.filter(pk__in=[run.pk for run in runs[2:]])
    assert set(left.values_list("lease_owner", "started_at", "deliveries")) == {("", None, 0)}
    assert drain_now()[0] == 2
    assert statuses(runs) == ["succeeded"] * 4


def test_a_batch_that_fails_is_advanced_run_by_run_and_nothing_is_lost(
    flow, test_database_url, monkeypatch
):
    """Another worker (whose lease took over) recorded a step of one run first: the batch's
    INSERT meets the unique completion index and rolls back; every run is then advanced
    on its own, and the other worker's outcome stands."""
    runs = queue_runs(flow, 3)
    real_flush = Batch._flush

    def other_worker_completes_a_step_first(self) -> None:
        monkeypatch.setattr(Batch, "_flush", real_flush)
        record_s0_elsewhere(test_database_url, runs[1].id)
        real_flush(self)

    monkeypatch.setattr(Batch, "_flush", other_worker_completes_a_step_first)
    assert drain_now()[0] == 3
    assert statuses(runs) == ["succeeded"] * 3
    assert StepRun.objects.get(run=runs[1], node_id="s0").output == {"n": 100}
    assert Run.objects.get(pk=runs[1].pk).output == {"n": 2}
    assert StepRun.objects.filter(run=runs[0]).count() == 3


def test_a_run_cancelled_while_its_batch_runs_stays_cancelled(flow, test_database_url, monkeypatch):
    runs = queue_runs(flow, 2)
    real_flush = Batch._flush

    def cancel_first(self) -> None:
        with psycopg.connect(test_database_url, autocommit=True) as other:
            other.execute("UPDATE runs_run SET status = 'cancelled' WHERE id = %s", [runs[0].id])
        real_flush(self)

    monkeypatch.setattr(Batch, "_flush", cancel_first)
    drain_now()
    assert statuses(runs) == ["cancelled", "succeeded"]
    cancelled = Run.objects.get(pk=runs[0].pk)
    assert cancelled.lease_owner == "" and cancelled.output is None


def test_a_run_that_keeps_crashing_its_worker_is_dead_lettered_by_the_drain(flow):
    [run] = queue_runs(flow, 1)
    Run.objects.filter(pk=run.pk).update(deliveries=settings.FLOWGATE["MAX_DELIVERIES"])
    drain_now()
    run.refresh_from_db()
    assert run.status == "failed" and run.error["type"] == "DeadLettered"


def test_a_burst_of_runs_sends_one_drain_request(flow, monkeypatch):
    sent: list[object] = []
    monkeypatch.setattr(tasks.drain, "apply_async", lambda *args, **kwargs: sent.append(args))
    tasks.drain()  # as a worker would: clears any request left by an earlier test
    with transaction.atomic():
        runs = [
            run_start(flow=flow, trigger="manual", payload=envelope({"n": i})).run
            for i in range(10)
        ]
    assert len(sent) == 1
    runs.append(run_start(flow=flow, trigger="manual", payload=envelope({"n": 10})).run)
    assert len(sent) == 1  # that request is still pending: its drain will find this run

    tasks.drain()
    assert statuses(runs) == ["succeeded"] * 11
    run_start(flow=flow, trigger="manual", payload=envelope({"n": 11}))
    assert len(sent) == 2  # the drain took the request: a new run asks again
    tasks.drain()  # no request left pending for the tests that follow


def test_the_calls_of_a_batch_are_in_flight_together_while_its_runs_stay_leased(
    flow, test_database_url, monkeypatch
):
    """A batch keeps its runs when they call out: their calls run concurrently (each waits
    for the others here, which a worker calling out one at a time never passes), and
    meanwhile every run is committed as running under the drain's lease."""
    runs = queue_runs(flow, 3)
    transform = registry.get("transform.set")
    real_execute = transform.execute
    all_in_flight = threading.Barrier(3, timeout=10)
    seen_during_calls: list[list[tuple]] = []

    def execute_with_the_others(self, ctx, config, data):  # type: ignore[no-untyped-def]
        if ctx.node_id == "s0":
            all_in_flight.wait()
            with psycopg.connect(test_database_url, autocommit=True) as other:
                seen_during_calls.append(
                    other.execute(
                        "SELECT status, lease_owner <> '' FROM runs_run WHERE id = ANY(%s)",
                        [[run.id for run in runs]],
                    ).fetchall()
                )
        return real_execute(self, ctx, config, data)

    monkeypatch.setattr(transform, "calls_out", True)
    monkeypatch.setattr(transform, "execute", execute_with_the_others)
    advanced, _ = drain_now()

    assert advanced == 3
    assert statuses(runs) == ["succeeded"] * 3
    assert seen_during_calls[0] == [("running", True)] * 3
    assert Run.objects.filter(pk__in=[run.pk for run in runs], lease_owner="").count() == 3


def test_a_queued_run_another_worker_still_holds_is_left_to_it(flow):
    """Resumed while a worker was advancing it: that worker's lease stands (the reconciler
    re-drives the run once the lease is given back or expires)."""
    [run] = queue_runs(flow, 1)
    Run.objects.filter(pk=run.pk).update(
        lease_owner="other-worker", lease_expires_at=timezone.now() + timedelta(minutes=1)
    )
    assert drain_now()[0] == 0
    run.refresh_from_db()
    assert (run.status, run.lease_owner) == ("queued", "other-worker")


def test_a_run_started_while_the_broker_is_down_is_kept_for_the_reconciler(
    flow, monkeypatch, caplog
):
    def broker_down(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise kombu.exceptions.OperationalError("Error 111 connecting to 127.0.0.1:6379")

    tasks.drain()  # no request left pending by an earlier test
    monkeypatch.setattr(tasks.drain, "apply_async", broker_down)
    started = run_start(flow=flow, trigger="manual", payload=envelope({"n": 1}))

    assert started.created and statuses([started.run]) == ["queued"]
    assert "no drain requested" in caplog.text
    monkeypatch.undo()
    tasks.drain()  # later, the next drain (or the reconciler's re-drive) advances it
    assert statuses([started.run]) == ["succeeded"]


def test_a_wait_ended_while_a_worker_holds_the_run_is_not_lost(
    workspace, builder_user, test_database_url, monkeypatch
):
    """A decision resumes one branch while a worker advances another (a retry, say): the
    worker must not park the run as waiting on the step that was just resumed."""
    flow = published_flow(
        workspace,
        builder_user,
        definition(
            [
                node("start", "trigger.manual"),
                node("pause", "util.delay", duration="1h"),
                node("calc", "transform.set", values={"n": "trigger.body.n"}),
            ],
            [("start", "pause"), ("start", "calc")],
        ),
    )
    [run] = queue_runs(flow, 1)
    drain_now()
    assert statuses([run]) == ["waiting"]
    Run.objects.filter(pk=run.pk).update(status="running")  # due again, as for a retry
    real_settle = executor.RunExecutor._settle

    def resumed_meanwhile(self) -> None:
        with psycopg.connect(test_database_url, autocommit=True) as other:
            other.execute(
                "UPDATE runs_steprun SET status = 'resuming', resume_signal = '{}'"
                " WHERE run_id = %s AND node_id = 'pause'",
                [run.id],
            )
            other.execute("UPDATE runs_run SET status = 'queued' WHERE id = %s", [run.id])
        real_settle(self)

    monkeypatch.setattr(executor.RunExecutor, "_settle", resumed_meanwhile)
    advance(run.id)
    monkeypatch.undo()

    assert statuses([run]) == ["queued"]
    drain_now()
    assert statuses([run]) == ["succeeded"]


def cancel_elsewhere(database_url: str, run: Run) -> None:
    with psycopg.connect(database_url, autocommit=True) as other:
        other.execute("UPDATE runs_run SET status = 'cancelled' WHERE id = %s", [run.id])


def test_a_run_cancelled_while_its_call_is_in_flight_stays_cancelled(
    flow, test_database_url, monkeypatch
):
    runs = queue_runs(flow, 2)
    transform = registry.get("transform.set")
    real_execute = transform.execute

    def cancel_during_the_call(self, ctx, config, data):  # type: ignore[no-untyped-def]
        if str(ctx.run_id) == str(runs[1].id) and ctx.node_id == "s0":
            cancel_elsewhere(test_database_url, runs[1])
            time.sleep(0.6)  # past the half second after which a run's status is read again
        return real_execute(self, ctx, config, data)

    monkeypatch.setattr(transform, "calls_out", True)
    monkeypatch.setattr(transform, "execute", cancel_during_the_call)
    drain_now()

    assert statuses(runs) == ["succeeded", "cancelled"]
    cancelled = Run.objects.get(pk=runs[1].pk)
    assert cancelled.lease_owner == "" and cancelled.output is None
    assert not StepRun.objects.filter(run=cancelled, node_id="s1").exists()


def test_a_run_cancelled_while_it_waits_its_turn_in_the_batch_runs_no_step(
    flow, test_database_url, monkeypatch
):
    runs = queue_runs(flow, 2)
    transform = registry.get("transform.set")
    real_execute = transform.execute

    def slow_first_run(self, ctx, config, data):  # type: ignore[no-untyped-def]
        if str(ctx.run_id) == str(runs[0].id) and ctx.node_id == "s0":
            cancel_elsewhere(test_database_url, runs[1])
            time.sleep(0.6)  # past the half second after which a run's status is read again
        return real_execute(self, ctx, config, data)

    monkeypatch.setattr(transform, "execute", slow_first_run)
    drain_now()

    assert statuses(runs) == ["succeeded", "cancelled"]
    assert not StepRun.objects.filter(run=runs[1]).exists()


def test_the_runs_a_slow_run_kept_waiting_have_their_statuses_read_again_together(
    flow, monkeypatch
):
    runs = queue_runs(flow, 6)
    transform = registry.get("transform.set")
    real_execute = transform.execute

    def slow_first_run(self, ctx, config, data):  # type: ignore[no-untyped-def]
        if str(ctx.run_id) == str(runs[0].id) and ctx.node_id == "s0":
            time.sleep(0.6)  # past the half second after which a run's status is read again
        return real_execute(self, ctx, config, data)

    monkeypatch.setattr(transform, "execute", slow_first_run)
    with CaptureQueriesContext(connection) as queries:
        drain_now()

    assert statuses(runs) == ["succeeded"] * 6
    status_reads = [
        query["sql"]
        for query in queries.captured_queries
        if re.match(rf'\s*SELECT .*status.* FROM "?{Run._meta.db_table}"?\s', query["sql"])
    ]
    # The slow run's own look, then one for the five that waited (not one each).
    assert len(status_reads) == 2, status_reads


def test_drain_requests_stay_one_in_the_broker_however_many_ask(monkeypatch):
    """Runs queued one after another and drains finding full batches all ask for a drain;
    while one request waits in the broker, none is added (under a backlog the queue of
    requests grew to thousands, and the reconciler's ticks waited behind them)."""
    import uuid

    import redis

    from studio.celery import app as celery_app

    queue = f"test-drain-requests-{uuid.uuid4().hex[:8]}"
    monkeypatch.setitem(celery_app.conf, "task_default_queue", queue)
    broker = redis.Redis.from_url(settings.REDIS_URL)

    def drain_finding_full_batches(*, wake_another, **_) -> int:  # type: ignore[no-untyped-def]
        for _ in range(20):
            tasks.request_drain()  # a run committed (outside a transaction: at once)
            wake_another()  # "another worker, join in"
        return 0

    monkeypatch.setattr(tasks, "drain_queued", drain_finding_full_batches)
    try:
        tasks.drain()  # the task body, here in this process
        assert broker.llen(queue) == 1
    finally:
        broker.delete(queue, tasks._drain_flag())
