"""Advancing a run: claim it, execute every step that is ready, park or finish it.

The algorithm, and why it is safe under crashes and duplicate messages:

1. **Claim.** One conditional UPDATE takes the run's lease if the run is queued/running
   and nobody else holds an unexpired lease (database clock). Duplicate Celery messages
   and re-drives by the reconciler therefore never run the same run twice at once.
2. **Recover.** A step attempt left ``running`` by a dead worker is either retried (blocks
   without side effects, or idempotent ones — they send ``Idempotency-Key``) or marked
   *in doubt* and shown to a person (non-idempotent side effects).
3. **Execute** ready steps inline, in topological order. A step's outcome is one row
   write; the partial unique index on (run, node) for completed rows means an outcome can
   be recorded only once, whatever races happen. Side-effecting steps first record that
   they started, so a crash mid-call is detectable.
4. **Park or finish.** Waiting steps (approvals, delays, sub-flows) and scheduled retries
   leave the run without holding a worker; ``wake_at`` tells the reconciler when to look
   again. Otherwise the run succeeds or fails.

Queued runs (new, resumed, retried) are advanced by ``drain_queued``: one claim takes a
batch of them (``FOR UPDATE SKIP LOCKED``), and the same steps 2-4 run for each in one
shared transaction, so a batch costs the statements and the commit of one run.
"""

from __future__ import annotations

import logging
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from apps.blocks.base import BlockError, Result, Wait
from apps.blocks.expressions import ExpressionError
from apps.core import batch_rows, jsonsafe
from apps.core.tracing import continued_trace, run_span, step_span
from apps.flows.definition import FlowGraph, Node
from apps.flows.models import FlowVersion

from ..models import COMPLETED_STEP_STATUSES, Run, RunStatus, StepRun, StepStatus
from . import effects
from .context import StepContext, expression_environment
from .policy import NodeSettings, StepTimeout, backoff_seconds, call_with_timeout

logger = logging.getLogger("flowgate.engine")


@dataclass(frozen=True)
class AdvanceOutcome:
    run_id: Any
    claimed: bool
    status: str | None = None
    steps_executed: int = 0
    run: Run | None = None  # as this advance left it (status, output, response)


def advance(
    run_id: Any, *, budget_seconds: float | None = None, graph: FlowGraph | None = None
) -> AdvanceOutcome:
    """Advance ``run_id`` as far as it can go now. Safe to call any number of times.
    ``graph`` saves a look-up when the caller has parsed the run's definition already."""
    owner = uuid.uuid4().hex
    run = _claim(run_id, owner)
    if run is None:
        return AdvanceOutcome(run_id, claimed=False)
    executor = _RunExecutor(run, owner, budget_seconds, graph, batch=_Batch())
    committed = False
    try:
        with executor.batch:
            executor.advance()
        committed = True
    except IntegrityError:
        logger.warning("run %s: a step was completed by another worker; yielding", run_id)
        executor.steps_executed = 0
    finally:
        if not committed:  # the release above, if any, was rolled back with its batch
            _release(run, owner, progressed=executor.steps_executed > 0)
    return AdvanceOutcome(run_id, True, run.status, executor.steps_executed, run)


class _Batch:
    """Groups the outcomes of steps without side effects into one transaction.

    Recomputing such steps after a crash is harmless, so they need not be committed one
    by one (each commit waits for a disk flush), nor written one by one: new outcome rows
    wait in ``pending`` and go to Postgres in one INSERT just before the commit. One batch
    can serve many runs (the drain advances a claimed batch of runs in one transaction).
    Before a side effect starts, the batch commits, so "this effect started" is durable
    before the effect happens.
    """

    def __init__(self) -> None:
        self._atomic: Any = None
        self.pending: list[StepRun] = []  # new outcome rows, inserted together on commit
        self.before_commit: list[Callable[[], None]] = []  # each run's last writes
        self.finishing: list[effects.Finish] = []  # runs that end, written together
        # A drain's claimed runs not started yet, and how to give them back.
        self.unstarted: list[Run] = []
        self.give_back: Callable[[list[Run]], None] = lambda runs: None

    def __enter__(self) -> _Batch:
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.records = batch_rows.RowBatch().open()  # audit and decision-log rows
        return self

    def __exit__(self, *exc_info: Any) -> None:
        atomic, self._atomic = self._atomic, None
        if atomic is None:  # a commit() failed and rolled back already: nothing is open
            return
        if exc_info[0] is None:
            try:
                self._flush()
            except BaseException:
                self.records.close()
                atomic.__exit__(*sys.exc_info())
                raise
        else:
            self.pending, self.finishing = [], []
        self.records.close()
        atomic.__exit__(*exc_info)

    def commit(self) -> None:
        """Commit what is pending and carry on in a new transaction."""
        self.__exit__(None, None, None)
        self.__enter__()

    def give_back_unstarted(self) -> bool:
        """Put the runs not started yet back in the queue (with this batch's commit)."""
        if not self.unstarted:
            return False
        runs, self.unstarted = self.unstarted, []
        self.give_back(runs)
        return True

    def _flush(self) -> None:
        for write in self.before_commit:
            write()
        self.records.flush()
        if self.pending:
            rows, self.pending = self.pending, []
            StepRun.objects.bulk_create(rows)
        if self.finishing:
            finishing, self.finishing = self.finishing, []
            effects.runs_finished(finishing)


# The table name is our own constant; every value is a bound parameter. One round trip
# takes the lease and reads the run; ``has_steps`` spares a new run the look-up of steps.
CLAIM_SQL = f"""
    UPDATE {Run._meta.db_table} AS run
       SET lease_owner = %s, lease_expires_at = now() + make_interval(secs => %s),
           deliveries = deliveries + 1,
           status = CASE WHEN status = 'queued' THEN 'running' ELSE status END,
           started_at = COALESCE(started_at, now()), updated_at = now()
     WHERE id = %s AND status IN ('queued', 'running')
       AND (lease_expires_at IS NULL OR lease_expires_at < now())
 RETURNING run.*, now() AS database_now,
           EXISTS (SELECT 1 FROM {StepRun._meta.db_table} WHERE run_id = run.id) AS has_steps
"""  # noqa: S608


def _claim(run_id: Any, owner: str) -> Run | None:
    """The run, leased to ``owner``, with ``database_now`` and ``has_steps`` set; or None
    when it is finished, parked or leased to someone else."""
    lease = settings.FLOWGATE["RUN_LEASE_SECONDS"]
    return next(iter(Run.objects.raw(CLAIM_SQL, [owner, lease, run_id])), None)


def _release(run: Run, owner: str, *, progressed: bool) -> None:
    updates: dict[str, Any] = {"lease_owner": "", "lease_expires_at": None}
    if progressed:
        updates["deliveries"] = 0
    Run.objects.filter(pk=run.pk, lease_owner=owner).update(**updates)


# The claim of the drain: the oldest queued runs nobody holds, skipping rows another
# drain has locked, so concurrent drains never wait for each other nor take the same run.
# Its WHERE is the ``run_queued`` index's condition, word for word, so that the planner
# walks that index. (A queued run still leased — resumed while a worker held it — is left
# to the reconciler, which re-drives it once the lease is given back or expires.)
CLAIM_QUEUED_SQL = f"""
    WITH due AS (
        SELECT id FROM {Run._meta.db_table}
         WHERE status = 'queued' AND lease_owner = ''
         ORDER BY created_at
         LIMIT %s
           FOR UPDATE SKIP LOCKED
    )
    UPDATE {Run._meta.db_table} AS run
       SET lease_owner = %s, lease_expires_at = now() + make_interval(secs => %s),
           deliveries = deliveries + 1, status = 'running',
           started_at = COALESCE(started_at, now()), updated_at = now()
      FROM due
     WHERE run.id = due.id
 RETURNING run.*, now() AS database_now,
           EXISTS (SELECT 1 FROM {StepRun._meta.db_table} WHERE run_id = run.id) AS has_steps
"""  # noqa: S608


def drain_queued(
    *,
    before_claim: Callable[[], None],
    wake_another: Callable[[], None],
    batch_size: int,
    seconds: float,
) -> int:
    """Advance queued runs, ``batch_size`` at a time, until none is left or ``seconds``
    have passed; returns how many were advanced. ``before_claim`` runs before each claim
    (the caller's wake-up flag is cleared there, so a run queued after it is either seen
    by the claim or wakes a drain of its own); ``wake_another`` asks for another drain
    when this one leaves work behind or finds a full batch (another worker joins in)."""
    owner = uuid.uuid4().hex
    deadline = time.monotonic() + seconds
    advanced = 0
    while True:
        before_claim()
        runs = _claim_queued(owner, batch_size)
        if not runs:
            # SKIP LOCKED also passes over a queued run locked for a moment (being cancelled,
            # resumed twice): look again shortly rather than leave it to the reconciler.
            if not Run.objects.filter(status=RunStatus.QUEUED, lease_owner="").exists():
                return advanced
            if time.monotonic() > deadline:
                wake_another()
                return advanced
            time.sleep(0.02)
            continue
        if len(runs) == batch_size:
            wake_another()
        advanced += _advance_batch(runs, owner, deadline, wake_another)
        if time.monotonic() > deadline:
            wake_another()
            return advanced


def _claim_queued(owner: str, limit: int) -> list[Run]:
    lease = settings.FLOWGATE["RUN_LEASE_SECONDS"]
    runs = list(Run.objects.raw(CLAIM_QUEUED_SQL, [limit, owner, lease]))
    return sorted(runs, key=lambda run: run.created_at)


def _advance_batch(
    runs: list[Run], owner: str, deadline: float, wake_another: Callable[[], None]
) -> int:
    """Advance claimed ``runs`` in one transaction: one INSERT of their steps, one UPDATE
    of their ends and one commit for the lot. The runs not started are given back to the
    queue when the deadline passes or a step is about to call out (a slow call must not
    hold them up), and another drain is asked for. Should the batch fail (a step completed
    twice, a database error), it is rolled back and each run is advanced on its own, so
    one run's trouble costs the others nothing."""
    claimed_at, batch, done = time.monotonic(), _Batch(), 0

    def give_back(unstarted: list[Run]) -> None:
        _requeue_unstarted(unstarted, owner)
        transaction.on_commit(wake_another)

    batch.unstarted, batch.give_back = list(runs), give_back
    try:
        with batch:
            while batch.unstarted:
                if done and time.monotonic() > deadline:
                    batch.give_back_unstarted()
                    break
                run = batch.unstarted.pop(0)
                executor = _RunExecutor(run, owner, None, None, batch=batch, claimed_at=claimed_at)
                with continued_trace(run.trace_context), run_span("advance run", run):
                    executor.advance()
                done += 1
    except Exception:
        logger.exception("a batch of %d runs failed; advancing them one by one", len(runs))
        _release_batch(runs, owner)
        for run in runs:
            try:
                advance(run.pk)
            except Exception:  # left to the reconciler; the others still get their turn
                logger.exception("run %s could not be advanced", run.pk)
        return len(runs)
    return done


def _release_batch(runs: list[Run], owner: str) -> None:
    Run.objects.filter(pk__in=[run.pk for run in runs], lease_owner=owner).update(
        lease_owner="", lease_expires_at=None
    )


def _requeue_unstarted(runs: list[Run], owner: str) -> None:
    """Give back claimed runs this drain had no time for, as they were before the claim.
    One cancelled meanwhile keeps its end; only its lease is given back."""
    claimed = Run.objects.filter(pk__in=[run.pk for run in runs], lease_owner=owner)
    for has_steps in (True, False):
        # A run that never started shows no start time.
        started_at = {} if has_steps else {"started_at": None}
        claimed.filter(
            pk__in=[run.pk for run in runs if run.has_steps == has_steps],
            status=RunStatus.RUNNING,
        ).update(
            status=RunStatus.QUEUED,
            lease_owner="",
            lease_expires_at=None,
            deliveries=F("deliveries") - 1,
            **started_at,
        )
    _release_batch(runs, owner)


@lru_cache(maxsize=512)
def _version_graph(version_id: int) -> FlowGraph:
    # A published version never changes, so each process parses it once.
    definition = FlowVersion.objects.values_list("definition", flat=True).get(pk=version_id)
    return FlowGraph.parse(definition)


def graph_for(run: Run) -> FlowGraph:
    if run.version_id is None:
        return FlowGraph.parse(run.draft_definition)
    return _version_graph(run.version_id)


class _RunExecutor:
    def __init__(
        self,
        run: Run,
        owner: str,
        budget_seconds: float | None,
        graph: FlowGraph | None,
        *,
        batch: _Batch,
        claimed_at: float | None = None,
    ):
        self.run = run
        self.owner = owner
        self.now = run.database_now
        self.deadline = time.monotonic() + budget_seconds if budget_seconds else None
        self.graph = graph or graph_for(run)
        self.steps: dict[str, StepRun] = _latest_steps(run) if run.has_steps else {}
        self.services: dict[str, Any] = {}
        self.steps_executed = 0
        self.lease_released = False
        self.response_changed = False
        # When the claim read the database's clock and the run's status (a drain claims a
        # batch before it starts each run): both are moved on, or looked at again, from then.
        self.claimed_at = self.cancel_checked_at = claimed_at or time.monotonic()
        self.batch = batch
        batch.before_commit.append(self._store_response)

    # --- the loop ------------------------------------------------------------------
    def advance(self) -> None:
        """Execute (or dead-letter) the run, then give its lease back: in the batch's last
        transaction, one commit fewer per advance. A finished run's last UPDATE released
        the lease already."""
        if self.run.deliveries > settings.FLOWGATE["MAX_DELIVERIES"]:
            self.dead_letter()
        else:
            self.execute()
        if not self.lease_released:
            _release(self.run, self.owner, progressed=self.steps_executed > 0)

    def execute(self) -> None:
        self._recover_interrupted()
        progressed = True
        while progressed and not self._out_of_budget():
            progressed = False
            for node_id in self.graph.order():
                if self._out_of_budget() or self._run_cancelled():
                    break
                if self._step_once(node_id):
                    progressed = True
        self._settle()

    def _step_once(self, node_id: str) -> bool:
        step = self.steps.get(node_id)
        node = self.graph.nodes[node_id]
        if step is None:
            readiness = self._readiness(node_id)
            if readiness == "skip":
                self._record_skip(node)
                return True
            if readiness == "run":
                self._execute(node, attempt=1, row=None)
                return True
            return False
        if (
            step.status == StepStatus.RETRY_SCHEDULED
            and step.next_attempt_at <= self._database_now()
        ):
            self._execute(node, attempt=step.attempt, row=step)
            return True
        if step.status == StepStatus.RESUMING:
            self._resume(node, step)
            return True
        return False

    # --- readiness -----------------------------------------------------------------
    def _readiness(self, node_id: str) -> str:
        """'run' when every incoming edge is decided and one is taken, 'skip' when all are
        decided and none is taken, else 'wait'."""
        incoming = self.graph.incoming.get(node_id, ())
        if not incoming:
            return "run"
        taken = False
        for edge in incoming:
            source = self.steps.get(edge.source)
            if source is None or source.status not in COMPLETED_STEP_STATUSES:
                return "wait"
            taken = taken or (source.status == StepStatus.SUCCEEDED and source.port == edge.port)
        return "run" if taken else "skip"

    def _node_input(self, node_id: str) -> Any:
        if node_id == self.graph.trigger:
            return self.run.input
        taken = [
            edge.source
            for edge in self.graph.incoming.get(node_id, ())
            if self.steps[edge.source].status == StepStatus.SUCCEEDED
            and self.steps[edge.source].port == edge.port
        ]
        if len(taken) == 1 and not self.graph.nodes[node_id].block.joins:
            return self.steps[taken[0]].output
        return {source: self.steps[source].output for source in taken}

    def _scope(self) -> dict[str, Any]:
        trigger = self.steps.get(self.graph.trigger)
        return {
            "trigger": trigger.output if trigger is not None else self.run.input,
            "steps": {
                node_id: {"output": step.output, "port": step.port}
                for node_id, step in self.steps.items()
                if step.status == StepStatus.SUCCEEDED
            },
            "vars": {},
            "env": expression_environment(),
            "run": {"id": str(self.run.id), "correlation_id": self.run.correlation_id},
        }

    # --- executing -----------------------------------------------------------------
    def _context(self, node: Node, attempt: int) -> StepContext:
        return StepContext(
            workspace_id=self.run.workspace_id,
            run_id=self.run.id,
            node_id=node.id,
            attempt=attempt,
            correlation_id=self.run.correlation_id,
            dry_run=self.run.dry_run,
            scope=self._scope(),
            services=self.services,
        )

    def _execute(self, node: Node, *, attempt: int, row: StepRun | None) -> None:
        node_input = self._node_input(node.id)
        block = node.block()
        started = timezone.now()
        gave_back = node.block.calls_out and self.batch.give_back_unstarted()
        if gave_back or node.block.side_effect:
            self.batch.commit()  # others may take the runs given back while this step waits
        if node.block.side_effect:
            row = self._mark_started(node, attempt, row, node_input, started)
            self.batch.commit()
        node_settings = NodeSettings.for_node(node)
        clock = time.perf_counter()
        try:
            ctx = self._context(node, attempt)
            with step_span(run=self.run, node_id=node.id, block_type=node.type, attempt=attempt):
                result = call_with_timeout(
                    lambda: block.execute(ctx, node.config, node_input),
                    node_settings.timeout_seconds,
                )
            if not isinstance(result, Result):
                raise BlockError(f"{node.type} returned {type(result).__name__}, not a Result")
            # Outside data (an API's answer, a row, a message) can hold what Postgres refuses;
            # unchecked, the save fails and the run is re-driven until dead-lettered.
            if problem := jsonsafe.storage_problem(result.output):
                raise BlockError(f"the step's output cannot be stored: {problem}")
        except (BlockError, ExpressionError, StepTimeout) as error:
            self._record_failure(
                node, attempt, row, node_input, started, clock, error, node_settings
            )
            return
        except Exception as error:  # a bug in a block must fail the step, never the worker
            logger.exception("block %s crashed in run %s", node.type, self.run.id)
            self._record_failure(
                node,
                attempt,
                row,
                node_input,
                started,
                clock,
                BlockError(f"{type(error).__name__}: {error}"),
                node_settings,
            )
            return
        self._record_result(node, attempt, row, node_input, started, clock, result)

    def _resume(self, node: Node, step: StepRun) -> None:
        block = node.block()
        wait = Wait(
            kind=step.wait_kind,
            reference=step.wait_reference,
            deadline=step.wait_deadline,
            state=step.wait_state or {},
        )
        clock = time.perf_counter()
        try:
            result = block.resume(
                self._context(node, step.attempt), node.config, wait, step.resume_signal or {}
            )
        except (BlockError, ExpressionError) as error:
            self._record_failure(
                node,
                step.attempt,
                step,
                step.input,
                step.started_at,
                clock,
                error,
                NodeSettings(max_attempts=1),
            )
            return
        self._record_result(node, step.attempt, step, step.input, step.started_at, clock, result)

    def _mark_started(
        self, node: Node, attempt: int, row: StepRun | None, node_input: Any, started: datetime
    ) -> StepRun:
        if row is None:
            row = StepRun(
                run=self.run,
                node_id=node.id,
                block_type=node.type,
                block_version=node.block.version,
                attempt=attempt,
            )
        row.status, row.input, row.started_at = StepStatus.RUNNING, node_input, started
        row.save()
        self.steps[node.id] = row
        effects.step_event(self.run, row)
        return row

    def _record_result(
        self,
        node: Node,
        attempt: int,
        row: StepRun | None,
        node_input: Any,
        started: datetime | None,
        clock: float,
        result: Result,
    ) -> None:
        row = row or StepRun(
            run=self.run,
            node_id=node.id,
            block_type=node.type,
            block_version=node.block.version,
            attempt=attempt,
        )
        row.input, row.started_at = node_input, started or timezone.now()
        row.meta = {**(row.meta or {}), **result.meta}
        if result.wait is not None:
            self._park(row, result.wait)
        else:
            row.status, row.output, row.port = StepStatus.SUCCEEDED, result.output, result.port
            row.finished_at = timezone.now()
            row.duration_ms = (time.perf_counter() - clock) * 1000
            row.wait_state = None
        if not self._save_outcome(row):
            return
        self.steps_executed += 1
        if "response" in row.meta:
            self.run.response, self.response_changed = row.meta["response"], True
        effects.step_recorded(self.run, node, row)

    def _park(self, row: StepRun, wait: Wait) -> None:
        row.status, row.wait_kind, row.wait_reference = (
            StepStatus.WAITING,
            wait.kind,
            wait.reference,
        )
        row.wait_deadline, row.wait_state, row.resume_signal = wait.deadline, wait.state, None

    def _record_failure(
        self,
        node: Node,
        attempt: int,
        row: StepRun | None,
        node_input: Any,
        started: datetime | None,
        clock: float,
        error: Exception,
        node_settings: NodeSettings,
    ) -> None:
        retryable = isinstance(error, StepTimeout) or bool(getattr(error, "retryable", False))
        row = row or StepRun(
            run=self.run,
            node_id=node.id,
            block_type=node.type,
            block_version=node.block.version,
            attempt=attempt,
        )
        row.status, row.input, row.started_at = (
            StepStatus.FAILED,
            node_input,
            started or timezone.now(),
        )
        row.finished_at, row.duration_ms = timezone.now(), (time.perf_counter() - clock) * 1000
        row.error = {
            "message": getattr(error, "message", None) or str(error),
            "class": "transient" if retryable else "permanent",
            "type": type(error).__name__,
            "details": getattr(error, "details", {}) or {},
        }
        if isinstance(error, ExpressionError):
            row.error["details"] = {"expression": error.expression, "reason": error.reason}
        row.save()
        self.steps[node.id] = row
        self.steps_executed += 1
        if retryable and attempt < node_settings.max_attempts:
            self._schedule_retry(node, attempt + 1, node_settings)
        elif self._has_error_port(node):
            self._take_error_port(node, row)
        effects.step_event(self.run, self.steps[node.id])

    def _schedule_retry(self, node: Node, attempt: int, node_settings: NodeSettings) -> None:
        delay = backoff_seconds(attempt - 1, node_settings)
        row = StepRun.objects.create(
            run=self.run,
            node_id=node.id,
            block_type=node.type,
            block_version=node.block.version,
            attempt=attempt,
            status=StepStatus.RETRY_SCHEDULED,
            next_attempt_at=self._database_now() + timedelta(seconds=delay),
        )
        self.steps[node.id] = row
        effects.retry_scheduled(self.run, delay)

    def _has_error_port(self, node: Node) -> bool:
        return any(edge.port == "error" for edge in self.graph.outgoing.get(node.id, ()))

    def _take_error_port(self, node: Node, failed: StepRun) -> None:
        """A failure with an ``error`` edge completes the step down that port (fallback)."""
        row = StepRun(
            run=self.run,
            node_id=node.id,
            block_type=node.type,
            block_version=node.block.version,
            attempt=failed.attempt + 1,
            status=StepStatus.SUCCEEDED,
            port="error",
            input=failed.input,
            output={"error": failed.error},
            started_at=failed.started_at,
            finished_at=timezone.now(),
            duration_ms=0,
        )
        if self._save_outcome(row):
            effects.step_event(self.run, row)

    def _record_skip(self, node: Node) -> None:
        row = StepRun(
            run=self.run,
            node_id=node.id,
            block_type=node.type,
            block_version=node.block.version,
            status=StepStatus.SKIPPED,
        )
        self._save_outcome(row)

    def _save_outcome(self, row: StepRun) -> bool:
        """Record a step outcome: a new row waits for the batch's INSERT, an attempt row
        that exists is updated now. If another worker recorded an outcome first (possible
        only when our lease expired mid-step), the unique index raises IntegrityError, which
        aborts this advance and rolls back its batch: the other worker's outcome stands."""
        if row.pk is None:
            self.batch.pending.append(row)
        else:
            row.save()
        self.steps[row.node_id] = row
        return True

    def _store_response(self) -> None:
        """Before the batch commits: a ``flow.respond`` response not yet written."""
        if self.response_changed:
            Run.objects.filter(pk=self.run.pk).update(response=self.run.response)
            self.response_changed = False

    def _finish(self, status: str, *, output: Any = None, error: dict | None = None) -> None:
        """End the run with the batch's next write, which also gives the lease back and
        stores a response not yet written."""
        self.batch.finishing.append(
            effects.Finish(
                run=self.run,
                owner=self.owner,
                status=status,
                output=output,
                error=error,
                progressed=self.steps_executed > 0,
                response_changed=self.response_changed,
            )
        )
        self.response_changed = False
        self.lease_released = True

    # --- recovery, settling -------------------------------------------------------
    def _recover_interrupted(self) -> None:
        for node_id, step in list(self.steps.items()):
            if step.status != StepStatus.RUNNING:
                continue
            node = self.graph.nodes[node_id]
            if node.block.idempotent:
                step.status = StepStatus.FAILED
                step.error = {
                    "message": "the worker stopped during this step; retrying",
                    "class": "transient",
                    "type": "Interrupted",
                    "details": {},
                }
                step.finished_at = timezone.now()
                step.save()
                self._execute(node, attempt=step.attempt + 1, row=None)
            else:
                step.status = StepStatus.IN_DOUBT
                step.error = {
                    "message": "the worker stopped while this step's side effect was in "
                    "progress; it may or may not have happened. Check, then retry "
                    "the run from this step or cancel it.",
                    "class": "permanent",
                    "type": "InDoubt",
                    "details": {},
                }
                step.save()
                effects.step_event(self.run, step)

    def _settle(self) -> None:
        if self._run_cancelled():
            return
        statuses = {node_id: step.status for node_id, step in self.steps.items()}
        failed = [n for n, s in statuses.items() if s in (StepStatus.FAILED, StepStatus.IN_DOUBT)]
        if failed:
            step = self.steps[failed[0]]
            self._finish(
                RunStatus.FAILED,
                error={"node": failed[0], **(step.error or {"message": "failed"})},
            )
            return
        waiting = [
            s for s in self.steps.values() if s.status in (StepStatus.WAITING, StepStatus.RESUMING)
        ]
        retries = [s for s in self.steps.values() if s.status == StepStatus.RETRY_SCHEDULED]
        if retries:
            effects.run_parked(
                self.run, RunStatus.RUNNING, wake_at=min(s.next_attempt_at for s in retries)
            )
        elif waiting:
            deadlines = [s.wait_deadline for s in waiting if s.wait_deadline]
            effects.run_parked(
                self.run, RunStatus.WAITING, wake_at=min(deadlines) if deadlines else None
            )
        elif len(statuses) == len(self.graph.nodes) and all(
            s in COMPLETED_STEP_STATUSES for s in statuses.values()
        ):
            self._finish(RunStatus.SUCCEEDED, output=self._final_output())
        elif self._out_of_budget():
            effects.run_parked(self.run, RunStatus.RUNNING, wake_at=None, requeue=True)
        else:
            self._finish(
                RunStatus.FAILED,
                error={"message": "the run cannot progress: some steps were never reached"},
            )

    def _final_output(self) -> Any:
        for node_id in reversed(self.graph.order()):
            step = self.steps[node_id]
            if step.status == StepStatus.SUCCEEDED:
                return step.output
        return None

    def dead_letter(self) -> None:
        self._finish(
            RunStatus.FAILED,
            error={
                "message": f"dead-lettered: the run was delivered {self.run.deliveries} times "
                "without progress (a step keeps crashing its worker)",
                "type": "DeadLettered",
            },
        )

    # --- helpers -------------------------------------------------------------------
    def _database_now(self) -> datetime:
        # The claim returned the database's clock; move it forward with our own.
        return self.now + timedelta(seconds=time.monotonic() - self.claimed_at)

    def _out_of_budget(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline

    def _run_cancelled(self) -> bool:
        """Another process may cancel the run; look at most twice a second."""
        if time.monotonic() - self.cancel_checked_at > 0.5:
            self.cancel_checked_at = time.monotonic()
            self.run.status = Run.objects.values_list("status", flat=True).get(pk=self.run.pk)
        return self.run.status == RunStatus.CANCELLED


def _latest_steps(run: Run) -> dict[str, StepRun]:
    latest: dict[str, StepRun] = {}
    for step in StepRun.objects.filter(run=run).order_by("node_id", "attempt"):
        latest[step.node_id] = step
    return latest
