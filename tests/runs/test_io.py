"""Call-outs in flight: a slow API holds up nobody else, limits per host, step timeouts,
and a delivery that finds nothing due is no failed delivery."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from apps.runs.blocks import envelope
from apps.runs.engine import advance, drain_queued
from apps.runs.models import Run, StepRun
from apps.runs.services import run_start
from tests.runs.helpers import definition, node, published_flow
from tests.support.http_server import CountingServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("loopback_allowed")]


def calling_flow(workspace, user, url: str, name: str, **call_settings):
    return published_flow(
        workspace,
        user,
        definition(
            [
                node("start", "trigger.manual"),
                {**node("call", "connector.http", url=url, timeout_seconds=20), **call_settings},
                node("done", "transform.set", values={"n": "trigger.body.n"}),
            ],
            [("start", "call"), ("call", "done")],
            name=name,
        ),
        name=name,
    )


def queue(flow, count: int) -> list[Run]:
    return [
        run_start(flow=flow, trigger="manual", payload=envelope({"n": i}), enqueue=False).run
        for i in range(count)
    ]


def drain() -> int:
    return drain_queued(wake_another=lambda: None, batch_size=25, seconds=30)


def statuses(database_url: str, runs: list[Run]) -> list[str]:
    with psycopg.connect(database_url, autocommit=True) as other:
        rows = dict(
            other.execute(
                "SELECT id, status FROM runs_run WHERE id = ANY(%s)", [[run.id for run in runs]]
            ).fetchall()
        )
    return [rows[run.id] for run in runs]


def test_a_slow_api_delays_neither_the_fast_flow_beside_it_nor_past_its_host_limit(
    workspace, admin_user, server, test_database_url, settings
):
    """The slow API answers only once the fast flow's runs have all succeeded (seen from
    another connection, while the slow runs are still running): a worker that waited for
    each call in turn would never get there. The slow host never has more calls in
    flight than its limit, and the rest of the slow runs wait for a slot."""
    settings.FLOWGATE = {**settings.FLOWGATE, "IO_MAX_CALLS_PER_HOST": 2}
    slow = queue(calling_flow(workspace, admin_user, f"{server.url}/hold", "Slow"), 4)
    fast_server = CountingServer().__enter__()
    fast = queue(
        calling_flow(workspace, admin_user, f"http://localhost:{fast_server.port}/", "Fast"), 5
    )
    seen: dict[str, list[str]] = {}

    def release_when_the_fast_runs_are_done() -> None:
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline:
            if statuses(test_database_url, fast) == ["succeeded"] * 5:
                seen["slow"] = statuses(test_database_url, slow)
                break
            time.sleep(0.05)
        server.release.set()

    watcher = threading.Thread(target=release_when_the_fast_runs_are_done)
    watcher.start()
    try:
        assert drain() == 9
    finally:
        watcher.join()
        fast_server.__exit__(None, None, None)
    assert seen["slow"] == ["running"] * 4
    assert statuses(test_database_url, slow + fast) == ["succeeded"] * 9
    assert server.most_held == 2


def test_a_run_looked_at_before_its_retry_is_due_is_never_dead_lettered(
    workspace, admin_user, test_database_url, settings
):
    """Busy workers may claim a run again and again before its retry is due: such a
    delivery finds nothing to do, which is no sign of a step crashing its worker."""
    with CountingServer(statuses=[503]) as flaky:
        flow = calling_flow(
            workspace,
            admin_user,
            f"{flaky.url}/flaky",
            "Flaky",
            retry={"max_attempts": 2, "backoff_seconds": 3600, "max_backoff_seconds": 3600},
        )
        [run] = queue(flow, 1)
        advance(run.id)  # the first attempt fails; its retry is due in an hour
        for _ in range(settings.FLOWGATE["MAX_DELIVERIES"] + 2):
            assert advance(run.id).claimed
        run.refresh_from_db()
        assert (run.status, run.deliveries, run.lease_owner) == ("running", 0, "")
        StepRun.objects.filter(run=run, status="retry_scheduled").update(
            next_attempt_at=run.created_at
        )
        advance(run.id)
    run.refresh_from_db()
    assert run.status == "succeeded"


def test_a_call_past_its_step_timeout_is_abandoned_and_fails_the_step(
    workspace, admin_user, server
):
    """The engine stops waiting at the step's timeout (the driver's own timeout, 20 s
    here, would end the call much later) and records the timeout as the step's failure."""
    flow = calling_flow(
        workspace,
        admin_user,
        f"{server.url}/hold",
        "Hung",
        timeout_seconds=1,
        retry={"max_attempts": 1},
    )
    [run] = queue(flow, 1)
    assert drain() == 1
    run.refresh_from_db()
    step = StepRun.objects.get(run=run, node_id="call")
    assert run.status == "failed"
    assert (step.status, step.error["type"]) == ("failed", "StepTimeout")
    assert server.holding == 1  # the abandoned call is still with the slow API


def test_a_flow_concurrency_limit_bounds_its_calls_in_flight(workspace, admin_user, server):
    flow = calling_flow(workspace, admin_user, f"{server.url}/hold", "One at a time")
    version = flow.versions.get()
    version.definition = {**version.definition, "concurrency": {"limit": 1, "priority": 5}}
    version.save(update_fields=["definition"])
    runs = queue(flow, 3)

    def release_soon() -> None:
        deadline = time.monotonic() + 10
        while server.holding == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)  # the other runs' calls would be held by now, were they let through
        server.release.set()

    threading.Thread(target=release_soon).start()
    assert drain() == 3
    assert server.most_held == 1
    assert [run.status for run in Run.objects.filter(pk__in=[r.pk for r in runs])] == [
        "succeeded"
    ] * 3


def test_a_flow_concurrency_object_takes_a_limit_and_a_priority_and_nothing_else():
    from apps.flows.definition import validate_definition

    flow = definition([node("start", "trigger.manual")])
    assert validate_definition({**flow, "concurrency": {"limit": 5, "priority": -1}}) == []
    problems = validate_definition({**flow, "concurrency": {"limit": 0, "max_runs": 3}})
    assert sorted(problem.field for problem in problems) == [
        "concurrency.limit",
        "concurrency.max_runs",
    ]


def test_rows_a_call_writes_go_with_its_outcome_or_with_its_thread_when_abandoned(workspace):
    """What a call's block inserts (audit, decision log, monitoring) is handed to whoever
    records its outcome; a call abandoned at its deadline writes its own rows when it
    ends, since no outcome batch takes them then."""
    from apps.audit.models import AuditEvent
    from apps.audit.services import audit_record
    from apps.runs.engine.io import Call, InFlight
    from apps.runs.engine.policy import StepTimeout

    def work(action: str, pause: float):
        def call() -> str:
            audit_record(workspace_id=workspace.id, action=action, summary=action)
            time.sleep(pause)
            return action

        return call

    calls = InFlight()
    calls.add(Call(work("test.quick", 0), timeout=5, slots=(("test", 2),)))
    [quick] = calls.wait(5)
    [held] = quick.take_rows()
    assert quick.result == "test.quick" and held.action == "test.quick"
    assert not AuditEvent.objects.filter(action="test.quick").exists()  # the caller's to write

    calls.add(Call(work("test.late", 0.5), timeout=0.1, slots=(("test", 2),)))
    [late] = calls.wait(5)
    assert isinstance(late.error, StepTimeout) and late.take_rows() == []
    deadline = time.monotonic() + 10
    while not AuditEvent.objects.filter(action="test.late").exists():
        assert time.monotonic() < deadline, "the abandoned call's row was never written"
        time.sleep(0.05)


def test_call_outcomes_gathered_between_looks_go_in_one_transaction_with_the_next_claim(
    workspace, admin_user, server, monkeypatch
):
    """Runs trickling in: a drain with calls in flight looks at the queue every
    ``CLAIM_POLL_SECONDS`` and gathers the calls that end meanwhile; their outcomes, the
    claim of the run queued meanwhile and that run's first steps are one transaction. So
    two runs cost three rounds (A's start; A's outcome with B's claim and start; B's
    outcome), not four (each call's end a round of its own, the claim a statement of its
    own)."""
    from django.db import connection

    from apps.runs.engine import batch, claims, session

    monkeypatch.setattr(session, "CLAIM_POLL_SECONDS", 0.5)  # A's call ends well within
    flow = calling_flow(workspace, admin_user, f"{server.url}/", "Trickle")
    [first] = queue(flow, 1)
    later: list[Run] = []
    gather = session.Session.gather

    def gather_after_queuing_another(self, seconds: float) -> None:
        if not later:  # B arrives while A's call is out
            later.extend(queue(flow, 1))
        gather(self, seconds)

    monkeypatch.setattr(session.Session, "gather", gather_after_queuing_another)
    rounds, claimed_in_a_round = [], []
    enter, claim_queued = batch.Batch.__enter__, claims.claim_queued

    def counted(self):
        rounds.append(self)
        return enter(self)

    def claim(owner: str, limit: int) -> list[Run]:
        runs = claim_queued(owner, limit)
        claimed_in_a_round.extend((run.pk, connection.in_atomic_block) for run in runs)
        return runs

    monkeypatch.setattr(batch.Batch, "__enter__", counted)
    monkeypatch.setattr(claims, "claim_queued", claim)
    assert drain() == 2
    assert claimed_in_a_round == [(first.pk, False), (later[0].pk, True)]
    assert len(rounds) == 3
    assert [r.status for r in Run.objects.filter(pk__in=[first.pk, later[0].pk])] == [
        "succeeded"
    ] * 2
