"""Advancing one run: execute every step that is ready, park or finish it.

The algorithm, and why it is safe under crashes and duplicate messages:

1. **Claim** (``claims.py``). One conditional UPDATE takes the run's lease if the run is
   queued/running and nobody else holds an unexpired lease (database clock). Duplicate
   Celery messages and re-drives by the reconciler therefore never run the same run twice
   at once. Leases are short and renewed while the run is worked on.
2. **Recover.** A step attempt left ``running`` by a dead worker is either retried (blocks
   without side effects, or idempotent ones — they send ``Idempotency-Key``) or marked
   *in doubt* and shown to a person (non-idempotent side effects).
3. **Execute** ready steps in topological order. In-process steps run inline; a step
   that calls out is marked started (side effects) and handed to the I/O layer
   (``io.py``) once its batch committed, and the run carries on with the steps that do
   not depend on it. A step's outcome is one row write; the partial unique index on (run,
   node) for completed rows means an outcome can be recorded only once, whatever races
   happen.
4. **Park or finish.** Waiting steps (approvals, delays, sub-flows) and scheduled retries
   leave the run without holding a worker; ``wake_at`` tells the reconciler when to look
   again. Otherwise the run succeeds or fails.

``session.py`` drives executors: it claims runs (one, or a drain's batch), runs each
round of their steps in one transaction, waits for their calls and renews their leases.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, cast
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone

from apps.blocks.base import BlockError, Result, Wait
from apps.blocks.expressions import ExpressionError
from apps.core import jsonsafe
from apps.core.tracing import step_span
from apps.flows.definition import FlowGraph, Node
from apps.flows.models import FlowVersion

from .. import lifecycle
from ..lifecycle import STEP_INTERRUPTED, step_to
from ..models import COMPLETED_STEP_STATUSES, Run, RunStatus, StepRun, StepStatus
from . import claims, effects
from .batch import Batch
from .context import StepContext, expression_environment
from .io import Call, Slot, slots_for
from .outcomes import OutcomeRecorder
from .policy import NodeSettings, StepTimeout

logger = logging.getLogger("flowgate.engine")
# Failures a block reports as such; anything else is a bug in the block.
STEP_ERRORS = (BlockError, ExpressionError, StepTimeout)
# How often a run's status is read again while it is advanced (another process may cancel
# it): at most twice a second.
STATUS_READ_SECONDS = 0.5


@dataclass
class StepAttempt:
    """A step being executed: what its outcome is recorded with."""

    node: Node
    attempt: int
    row: StepRun | None
    input: Any
    started: datetime
    settings: NodeSettings


@lru_cache(maxsize=512)
def version_graph(version_id: int) -> FlowGraph:
    """A published version's graph: it never changes, so each process parses it once."""
    definition = FlowVersion.objects.values_list("definition", flat=True).get(pk=version_id)
    return FlowGraph.parse(definition)


def graph_for(run: Run) -> FlowGraph:
    if run.version_id is None:
        # A run without a version is a test run of the draft it keeps (``run_start``).
        return FlowGraph.parse(cast(dict[str, Any], run.draft_definition))
    return version_graph(run.version_id)


class RunExecutor(OutcomeRecorder):
    """Executes one claimed run's steps; ``submit`` hands a call-out to its session."""

    def __init__(
        self,
        run: Run,
        owner: str,
        *,
        submit: Callable[[Call], None],
        budget_seconds: float | None = None,
        graph: FlowGraph | None = None,
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
        self.in_flight: set[str] = set()  # nodes whose call-out is with the I/O layer
        self.submit = submit
        self.lease_released = False
        self.response_changed = False
        # When the claim read the database's clock and the run's status (a drain claims a
        # batch before it starts each run): both are moved on, or looked at again, from then.
        self.claimed_at = self.cancel_checked_at = claimed_at or time.monotonic()
        self.batch = Batch()

    @property
    def done(self) -> bool:
        return not self.in_flight

    # --- the loop ------------------------------------------------------------------
    def advance(self, batch: Batch) -> None:
        """Execute (or dead-letter) the run as far as it goes in ``batch``'s transaction;
        then, unless a call-out is in flight, give its lease back (in the batch's
        transaction: one commit fewer per advance)."""
        self._join(batch)
        if self.run.deliveries > settings.FLOWGATE["MAX_DELIVERIES"]:
            self.dead_letter()
        else:
            self._recover_interrupted()
            self._execute_ready()
        self._let_go()

    def call_ended(self, batch: Batch, call: Call) -> None:
        """Record a call-out's outcome in ``batch`` and carry on with the run."""
        self._join(batch)
        step: StepAttempt = call.step
        self.in_flight.discard(step.node.id)
        batch.records.hold(call.take_rows())  # what its block wrote, with its outcome
        clock = time.perf_counter() - call.elapsed
        if call.error is not None:
            self._step_failed(step, call.error, clock)
        else:
            self._step_done(step, call.result, clock)
        self._execute_ready()
        self._let_go()

    def _join(self, batch: Batch) -> None:
        self.batch = batch
        batch.before_commit.append(self._store_response)

    def _let_go(self) -> None:
        # A finished run's last UPDATE released the lease already.
        if self.done and not self.lease_released:
            self.batch.write_new_runs()
            claims.release(self.run, self.owner, progressed=self.steps_executed > 0)
            self.lease_released = True

    def _execute_ready(self) -> None:
        progressed = True
        while progressed and not self._out_of_budget():
            progressed = False
            for node_id in self.graph.order():
                if self._out_of_budget() or self._run_cancelled():
                    break
                if self._step_once(node_id):
                    progressed = True
        if self.done:
            self._settle()

    def _step_once(self, node_id: str) -> bool:
        if node_id in self.in_flight:
            return False
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
        if step.status == StepStatus.RETRY_SCHEDULED and _retry_due(step) <= self._database_now():
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
        step = StepAttempt(
            node,
            attempt,
            row,
            self._node_input(node.id),
            timezone.now(),
            node.run_settings,
        )
        calls_out = node.block.calls_out
        if node.block.side_effect:
            if not calls_out:  # a call-out starts only after its batch commits anyway
                self.batch.commit()
            step.row = self._mark_started(node, attempt, row, step.input, step.started)
            if not calls_out:
                self.batch.commit()
        work = self._work(step)
        if calls_out:
            self.in_flight.add(node.id)
            self.submit(
                Call(
                    work,
                    timeout=step.settings.timeout_seconds,
                    slots=self._slots(node),
                    owner=self,
                    step=step,
                    priority=self.graph.priority,
                )
            )
            return
        clock = time.perf_counter()
        try:
            result = work()
        except Exception as error:
            self._step_failed(step, error, clock)
            return
        self._step_done(step, result, clock)

    def _work(self, step: StepAttempt) -> Callable[[], Result]:
        """The block's execution, checked: on this thread, or on the I/O layer's."""
        node, block, ctx = step.node, step.node.block(), self._context(step.node, step.attempt)

        def work() -> Result:
            with step_span(
                run=self.run, node_id=node.id, block_type=node.type, attempt=ctx.attempt
            ):
                result = block.execute(ctx, node.config, step.input)
            if not isinstance(result, Result):
                raise BlockError(f"{node.type} returned {type(result).__name__}, not a Result")
            # Outside data (an API's answer, a row, a message) can hold what Postgres refuses;
            # unchecked, the save fails and the run is re-driven until dead-lettered.
            if problem := jsonsafe.storage_problem(result.output):
                raise BlockError(f"the step's output cannot be stored: {problem}")
            return result

        return work

    def _slots(self, node: Node) -> tuple[Slot, ...]:
        """Where the call goes (its connection, else its URL's host, else its block type)."""
        raw = node.raw_config
        host = raw.get("connection") or urlsplit(str(raw.get("url", ""))).hostname or node.type
        return slots_for(
            host=host,
            flow_id=self.run.flow_id,
            workspace_id=self.run.workspace_id,
            flow_limit=self.graph.concurrency,
        )

    def _step_failed(self, step: StepAttempt, error: BaseException, clock: float) -> None:
        if not isinstance(error, STEP_ERRORS):  # a bug in a block fails the step, not the worker
            logger.error("block %s crashed in run %s", step.node.type, self.run.id, exc_info=error)
            error = BlockError(f"{type(error).__name__}: {error}")
        self._record_failure(
            step.node,
            step.attempt,
            step.row,
            step.input,
            step.started,
            clock,
            error,
            step.settings,
        )

    def _step_done(self, step: StepAttempt, result: Result, clock: float) -> None:
        self._record_result(
            step.node, step.attempt, step.row, step.input, step.started, clock, result
        )

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

    # --- recovery, settling -------------------------------------------------------
    def _recover_interrupted(self) -> None:
        for node_id, step in list(self.steps.items()):
            if step.status != StepStatus.RUNNING:
                continue
            node = self.graph.nodes[node_id]
            if node.block.idempotent:
                step_to(step, STEP_INTERRUPTED, StepStatus.FAILED)
                step.error = {
                    "message": "the worker stopped during this step; retrying",
                    "class": "transient",
                    "type": "Interrupted",
                    "details": {},
                }
                step.finished_at = timezone.now()
                self.batch.save(step)
                self._execute(node, attempt=step.attempt + 1, row=None)
            else:
                step_to(step, STEP_INTERRUPTED, StepStatus.IN_DOUBT)
                step.error = {
                    "message": "the worker stopped while this step's side effect was in "
                    "progress; it may or may not have happened. Check, then retry "
                    "the run from this step or cancel it.",
                    "class": "permanent",
                    "type": "InDoubt",
                    "details": {},
                }
                self.batch.save(step)
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
        if retries or waiting or self._out_of_budget():
            self.batch.write_new_runs()  # parked: an UPDATE of its row
        if retries:
            effects.run_parked(
                self.run, RunStatus.RUNNING, wake_at=min(_retry_due(s) for s in retries)
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

    def status_read(self, status: str) -> None:
        """The run's status, read again by the caller (for many runs in one query)."""
        lifecycle.seen(self.run, status)
        self.cancel_checked_at = time.monotonic()

    @property
    def status_stale(self) -> bool:
        """Whether the run's status is due to be read again: another process may cancel
        the run, and it is looked at most every ``STATUS_READ_SECONDS``."""
        return time.monotonic() - self.cancel_checked_at > STATUS_READ_SECONDS

    def _run_cancelled(self) -> bool:
        if self.status_stale:
            self.cancel_checked_at = time.monotonic()
            self.batch.write_new_runs()
            lifecycle.seen(
                self.run, Run.objects.values_list("status", flat=True).get(pk=self.run.pk)
            )
        return self.run.status == RunStatus.CANCELLED


def _retry_due(step: StepRun) -> datetime:
    # A scheduled retry always has its time (``lifecycle.STEP_SCHEDULE_RETRY``).
    assert step.next_attempt_at is not None
    return step.next_attempt_at


def _latest_steps(run: Run) -> dict[str, StepRun]:
    latest: dict[str, StepRun] = {}
    for step in StepRun.objects.filter(run=run).order_by("node_id", "attempt"):
        latest[step.node_id] = step
    return latest
