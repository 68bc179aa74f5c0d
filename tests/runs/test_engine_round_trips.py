"""The engine's cost in database round trips: what the speed targets rest on.

A run of blocks without side effects is claimed and read in one statement and recorded in
one transaction, so its round trips do not grow with its number of steps."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.models import Run, StepRun
from apps.runs.services import run_start
from tests.core.test_events import socket_for
from tests.runs.helpers import chain, published_flow, record_s0_elsewhere

pytestmark = pytest.mark.django_db(transaction=True)


def advance_counting_queries(flow) -> tuple[Run, int]:
    run = run_start(flow=flow, trigger="manual", payload=envelope({"n": 1}), enqueue=False).run
    with CaptureQueriesContext(connection) as queries:
        outcome = advance(run.id)
    assert outcome.claimed
    return Run.objects.get(pk=run.pk), len(queries.captured_queries)


def test_a_longer_chain_costs_no_more_round_trips(workspace, builder_user):
    short = published_flow(workspace, builder_user, chain(1), name="Short")
    long = published_flow(workspace, builder_user, chain(10), name="Long")
    advance_counting_queries(short)  # the first run of a version reads its definition
    advance_counting_queries(long)

    short_run, short_queries = advance_counting_queries(short)
    long_run, long_queries = advance_counting_queries(long)

    assert short_run.status == long_run.status == "succeeded"
    assert long_run.output == {"n": 10}
    assert StepRun.objects.filter(run=long_run, status="succeeded").count() == 11
    assert long_queries == short_queries
    # claim+read, BEGIN, finish+release, INSERT of the steps, COMMIT
    assert long_queries <= 5
    assert long_run.lease_owner == "" and long_run.lease_expires_at is None


def test_step_events_wait_for_the_commit(workspace, builder_user, builder_client):
    """A page never sees a step that a rollback undid."""
    from asgiref.sync import async_to_sync, sync_to_async

    flow = published_flow(workspace, builder_user, chain(2))
    run = run_start(flow=flow, trigger="manual", payload=envelope({"n": 1}), enqueue=False).run

    def advance_then_roll_back() -> None:
        with transaction.atomic():
            advance(run.id)
            transaction.set_rollback(True)

    async def scenario() -> bool:
        socket = socket_for(builder_client, "acme", path=f"/ws/w/acme/runs/{run.id}/events/")
        await socket.connect()
        await sync_to_async(advance_then_roll_back)()
        nothing = await socket.receive_nothing(timeout=0.5)
        await socket.disconnect()
        return nothing

    assert async_to_sync(scenario)() is True
    assert Run.objects.get(pk=run.pk).status == "queued"
    assert not StepRun.objects.filter(run=run).exists()


def test_an_outcome_recorded_first_by_another_worker_stands(
    workspace, builder_user, test_database_url, monkeypatch
):
    """Batched outcomes meet the unique completion index at the batch's INSERT: if another
    worker (whose lease took over) recorded a step first, this advance rolls back and
    yields, and the run completes from the other worker's outcome."""

    from apps.runs.engine.batch import Batch

    flow = published_flow(workspace, builder_user, chain(2))
    run = run_start(flow=flow, trigger="manual", payload=envelope({"n": 1}), enqueue=False).run
    real_flush = Batch._flush

    def other_worker_completes_s0_first(self) -> None:
        record_s0_elsewhere(test_database_url, run.id)
        monkeypatch.setattr(Batch, "_flush", real_flush)
        real_flush(self)

    monkeypatch.setattr(Batch, "_flush", other_worker_completes_s0_first)
    yielded = advance(run.id)

    assert yielded.claimed and yielded.steps_executed == 0
    run.refresh_from_db()
    assert run.status == "running" and run.lease_owner == ""
    assert list(StepRun.objects.filter(run=run).values_list("node_id", flat=True)) == ["s0"]

    advance(run.id)
    run.refresh_from_db()
    assert run.status == "succeeded"
    s0 = StepRun.objects.get(run=run, node_id="s0")
    assert s0.output == {"n": 100}  # the other worker's outcome, never overwritten
