"""Driving executors: claim runs, advance them in rounds, wait for their call-outs.

A *session* holds the runs one caller has claimed (one run for ``advance``, many for a
drain). Each *round* is one transaction: the steps of freshly claimed runs, or the outcomes
of call-outs that ended and the steps that follow them. Call-outs marked started in a round
are launched once it commits (``io.py``), so many runs' calls are in flight together while
the caller goes on claiming and recording; their leases are renewed meanwhile.

Queued runs (new, resumed, retried, re-driven) are advanced by ``drain_queued``: one claim
takes a batch of them (``FOR UPDATE SKIP LOCKED``) and their first round runs in one shared
transaction, so a batch costs the statements and the commit of one run; a batch keeps its
runs while they call out, and the drain keeps claiming while calls are in flight, so a slow
dependency holds up neither the batch nor the queue.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections

from apps.core import native_sql
from apps.core.generation_cache import snapshot_unless_taken
from apps.core.tracing import run_span_current, start_run_span
from apps.flows.definition import FlowGraph

from .. import lifecycle
from ..models import Run
from . import claims
from .batch import Batch
from .executor import RunExecutor
from .io import Call, InFlight

logger = logging.getLogger("flowgate.engine")
# How often a drain with calls in flight looks at the queue again. Between two looks it
# gathers the outcomes of the calls that end, and records them with the runs the next look
# claims: one transaction per look, however many runs and calls it serves (at tens of runs
# a second, a round per call's end cost each run three transactions of its own).
CLAIM_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class AdvanceOutcome:
    run_id: Any
    claimed: bool
    status: str | None = None
    steps_executed: int = 0
    run: Run | None = None  # as this advance left it (status, output, response)


class Session:
    def __init__(self, owner: str, *, one_by_one_on_failure: bool) -> None:
        self.owner = owner
        # Inside a transaction the caller owns (a test, an eager task), calls read through
        # the caller's connection; otherwise each round commits on its own.
        # The wrapper itself, not the ``connection`` proxy: a call's thread installs it as its
        # own default connection, and a proxy there would look itself up for ever.
        shared = connections[DEFAULT_DB_ALIAS] if connection.in_atomic_block else None
        self.calls = InFlight(shared=shared)
        self.holding: dict[Any, RunExecutor] = {}  # runs with a call-out in flight
        # One "advance run" span per run, from its claim to its last round.
        self.spans: dict[int, Any] = {}
        self.one_by_one_on_failure = one_by_one_on_failure
        self.advanced = 0
        self.renewed_at = time.monotonic()
        # Calls that ended, gathered (``gather``) for the session's next round.
        self.gathered: list[Call] = []

    @property
    def busy(self) -> bool:
        return bool(self.holding)

    def start(
        self,
        runs: list[Run] | Callable[[], list[Run]],
        *,
        budget_seconds: float | None = None,
        graph: FlowGraph | None = None,
        insert: bool = False,
        with_ended_calls: bool = False,
    ) -> list[RunExecutor]:
        """The first round of freshly claimed ``runs`` (``insert``: new runs, leased
        already, written in that round's transaction). ``with_ended_calls``: the outcomes of
        the call-outs that ended meanwhile go in the same round, a transaction fewer (when
        runs trickle in, a drain's claims and its calls' ends each made one of their own).
        ``runs`` may be a claim to make as the round's first statement: its leases then
        commit with the round, or roll back with it (the runs stay queued)."""
        ended = self._ended_calls(0) if with_ended_calls else []
        executors: list[RunExecutor] = []
        involved = _owners(ended)  # grows with the claimed runs: a failed round lets go of all

        def work(batch: Batch) -> None:
            claimed = runs() if callable(runs) else runs
            claimed_at = time.monotonic()
            for run in claimed:
                executor = RunExecutor(
                    run,
                    self.owner,
                    submit=self.calls.add,
                    budget_seconds=budget_seconds,
                    graph=graph,
                    claimed_at=claimed_at,
                )
                executors.append(executor)
                involved.append(executor)
                self.spans[id(executor)] = start_run_span("advance run", executor.run)
            if insert:  # written with the round's first statement that needs them
                batch.new_runs.extend(executor.run for executor in executors)
            for index, executor in enumerate(executors):
                _read_statuses_when_due(executors, index)
                with run_span_current(self.spans[id(executor)]):
                    executor.advance(batch)
            self._record(batch, ended)

        self._round(work, involved)
        return executors

    def wait(self, timeout: float) -> None:
        """Wait up to ``timeout`` for call-outs; record those that ended in one round."""
        ended = self._ended_calls(timeout)
        if ended:
            self._round(lambda batch: self._record(batch, ended), _owners(ended))

    def gather(self, seconds: float) -> None:
        """Wait ``seconds`` for calls to end, keeping their outcomes for the next round
        (``start`` with ``with_ended_calls``, or ``wait``); leases are renewed meanwhile."""
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0 and len(self.calls):
            self._renew_leases_when_due()
            self.gathered += self.calls.wait(left)
        if left > 0:  # nothing in flight (or every slot taken by another session's call)
            time.sleep(left)

    def _ended_calls(self, timeout: float) -> list[Call]:
        """The calls gathered and those that ended within ``timeout`` (their runs'
        statuses read again when due); leases are renewed meanwhile when due."""
        self._renew_leases_when_due()
        gathered, self.gathered = self.gathered, []
        ended = [call for call in (*gathered, *self.calls.wait(timeout)) if self._holds(call)]
        _read_statuses_again(_owners(ended))
        return ended

    def _record(self, batch: Batch, ended: list[Call]) -> None:
        for index, call in enumerate(ended):
            executor: RunExecutor = call.owner
            if executor.status_stale:
                _read_statuses_again(_owners(ended[index:]))
            with run_span_current(self.spans[id(executor)]):
                executor.call_ended(batch, call)

    def _holds(self, call: Call) -> bool:
        # A call of a run this session let go of (its round failed) is nobody's now.
        return self.holding.get(call.owner.run.pk) is call.owner

    def _round(self, work: Callable[[Batch], None], executors: list[RunExecutor]) -> None:
        try:
            # The process's caches (egress allow-lists, policies, subscriptions) go by
            # generations read once for the round, for its steps and the calls it starts
            # (each call runs in a copy of the context it was made in), or once for the
            # whole request when a sync webhook read them with its rate limit: read per
            # call, the generation cost each HTTP step a Redis round trip on its I/O thread.
            with Batch() as batch, snapshot_unless_taken():
                work(batch)
        except Exception:
            self._let_go(executors)
            if not self.one_by_one_on_failure:
                raise
            self._one_by_one(executors)
            return
        # Its executors keep the batch they last joined, which keeps their hooks: without
        # this, each run ended as a reference cycle, left to the garbage collector.
        batch.before_commit.clear()
        for executor in executors:
            if executor.done:
                self.holding.pop(executor.run.pk, None)
                self.spans.pop(id(executor)).end()
                self.advanced += 1
            else:
                self.holding[executor.run.pk] = executor
        self.calls.launch()

    def _let_go(self, executors: list[RunExecutor]) -> None:
        """The round was rolled back (a step completed twice, a database error): forget
        its calls not launched yet and give its runs back."""
        self.calls.discard(set(executors))
        for executor in executors:
            self.holding.pop(executor.run.pk, None)
            self.spans.pop(id(executor)).end()
        claims.release_all([executor.run for executor in executors], self.owner)

    def _one_by_one(self, executors: list[RunExecutor]) -> None:
        """In a drain, advance each run of a failed round on its own, so one run's trouble
        costs the others nothing."""
        logger.exception("a batch of %d runs failed; advancing them one by one", len(executors))
        for executor in executors:
            try:
                advance(executor.run.pk)
            except Exception:  # left to the reconciler; the others still get their turn
                logger.exception("run %s could not be advanced", executor.run.pk)
        self.advanced += len(executors)

    def _renew_leases_when_due(self) -> None:
        if self.holding and time.monotonic() - self.renewed_at > claims.lease_seconds() / 3:
            claims.renew_leases(self.owner)
            self.renewed_at = time.monotonic()


def _owners(calls: list[Call]) -> list[RunExecutor]:
    return list({id(call.owner): call.owner for call in calls}.values())


def _read_statuses_when_due(executors: list[RunExecutor], index: int) -> None:
    """Before ``executors[index]`` goes on: when its status is stale, read it again with
    those of the round's others after it that are stale too. A round of many runs lasts
    longer than half a second on a busy machine, and each executor would then ask for its
    own status (an ORM query each, ~14% of a loaded worker's CPU)."""
    if executors[index].status_stale:
        _read_statuses_again(executors[index:])


STATUSES_SQL = f"SELECT id, status FROM {Run._meta.db_table} WHERE id = ANY(%s)"  # noqa: S608


def _read_statuses_again(executors: list[RunExecutor]) -> None:
    """Another process may have cancelled a run while its call was out: one query for the
    runs of a round whose status was read over half a second ago (an executor would
    otherwise ask run by run). A run not written yet (a sync webhook's) keeps its own."""
    stale = [e for e in executors if e.status_stale]
    if not stale:
        return
    query = native_sql.native(STATUSES_SQL)
    statuses = dict(native_sql.execute(query, [[e.run.pk for e in stale]]).fetchall())
    for executor in stale:
        executor.status_read(statuses.get(executor.run.pk, executor.run.status))


def advance(
    run_id: Any, *, budget_seconds: float | None = None, graph: FlowGraph | None = None
) -> AdvanceOutcome:
    """Advance ``run_id`` as far as it can go now. Safe to call any number of times.
    ``graph`` saves a look-up when the caller has parsed the run's definition already.
    Waits for the run's call-outs (each bounded by its step's timeout)."""
    owner = uuid.uuid4().hex
    run = claims.claim(run_id, owner)
    if run is None:
        return AdvanceOutcome(run_id, claimed=False)
    session = Session(owner, one_by_one_on_failure=False)
    try:
        [executor] = session.start([run], budget_seconds=budget_seconds, graph=graph)
        while session.busy:
            session.wait(1.0)
    except IntegrityError:
        logger.warning("run %s: a step was completed by another worker; yielding", run_id)
        return AdvanceOutcome(run_id, True, run.status, 0, run)
    return AdvanceOutcome(run_id, True, run.status, executor.steps_executed, run)


def advance_new(
    run: Run, *, budget_seconds: float | None = None, graph: FlowGraph | None = None
) -> AdvanceOutcome:
    """Write ``run`` (new, not written yet) leased to this call, and advance it as far as
    it can go now, as ``advance`` would. Its row is written in the transaction of its first
    steps, so a run that ends there costs one commit, and no claim (and is written ended:
    one INSERT, no UPDATE). A duplicate
    idempotency key raises IntegrityError, with nothing written."""
    owner = uuid.uuid4().hex
    lifecycle.claim_new(run, owner, lease_seconds=claims.lease_seconds())
    session = Session(owner, one_by_one_on_failure=False)
    [executor] = session.start([run], budget_seconds=budget_seconds, graph=graph, insert=True)
    try:
        while session.busy:
            session.wait(1.0)
    except IntegrityError:
        logger.warning("run %s: a step was completed by another worker; yielding", run.pk)
        return AdvanceOutcome(run.pk, True, run.status, 0, run)
    return AdvanceOutcome(run.pk, True, run.status, executor.steps_executed, run)


def drain_queued(
    *,
    wake_another: Callable[[], None],
    batch_size: int,
    seconds: float,
) -> int:
    """Advance queued runs, ``batch_size`` at a time, until none is left or ``seconds``
    have passed; returns how many were advanced. While its runs have calls in flight the
    drain goes on claiming (up to ``DRAIN_MAX_RUNS`` runs held, ``DRAIN_MAX_SECONDS`` in
    all), then waits for their calls. ``wake_another`` asks for another drain when this one
    leaves work behind or finds a full batch (another worker joins in)."""
    flowgate = settings.FLOWGATE
    session = Session(uuid.uuid4().hex, one_by_one_on_failure=True)
    started = time.monotonic()
    deadline, give_up = started + seconds, started + float(flowgate["DRAIN_MAX_SECONDS"])
    room = int(flowgate["DRAIN_MAX_RUNS"])
    next_claim, claims_made = 0.0, 0
    while True:
        now = time.monotonic()
        # A requested drain claims once at least, however short its time.
        claiming = not claims_made or now < deadline or (session.busy and now < give_up)
        if not claiming and not session.busy:
            if now >= deadline and claims.queued_unleased_exist():
                wake_another()
            return session.advanced
        if claiming and now >= next_claim and len(session.holding) < room:
            limit = min(batch_size, room - len(session.holding))
            claims_made += 1
            runs = _claim_and_start(session, limit)
            if runs:
                if runs == limit:
                    wake_another()
                # A full batch may leave more queued: claim again at once; else, while
                # calls are out, at the next look (gathering their ends meanwhile).
                if runs < limit and session.busy:
                    next_claim = now + CLAIM_POLL_SECONDS
                continue
            if not session.busy:
                # SKIP LOCKED also passes over a queued run locked for a moment (being
                # cancelled, resumed twice): look again shortly rather than leave it.
                if not claims.queued_unleased_exist():
                    return session.advanced
                time.sleep(0.02)
                continue
            next_claim = now + CLAIM_POLL_SECONDS
            if session.gathered:  # the outcomes gathered since the last look
                session.wait(0)
                continue
        if claiming and len(session.holding) < room:
            session.gather(max(0.0, next_claim - time.monotonic()))
        else:  # until a call ends (or half a second): nothing to claim meanwhile
            session.wait(0.5)


def _claim_and_start(session: Session, limit: int) -> int:
    """Claim up to ``limit`` queued runs and run their first round; how many were claimed.
    With call outcomes gathered, the claim is that round's first statement (one
    transaction for both); else it is a statement of its own, and a round follows only
    when it found runs."""
    if session.gathered:
        return len(
            session.start(lambda: claims.claim_queued(session.owner, limit), with_ended_calls=True)
        )
    runs = claims.claim_queued(session.owner, limit)
    if runs:
        session.start(runs, with_ended_calls=True)
    return len(runs)
