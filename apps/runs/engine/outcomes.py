"""Recording step outcomes: the writing half of a run's executor (``executor.py``).

Every write goes through the executor's current batch (one INSERT and one UPDATE of step
rows per transaction, one UPDATE for the runs that end); live events and decision audit
records follow each outcome (``effects.py``).
"""

from __future__ import annotations

import abc
import time
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from apps.blocks.base import Result, Wait
from apps.blocks.expressions import ExpressionError
from apps.core.batch_rows import new_row
from apps.flows.definition import FlowGraph, Node

from .. import lifecycle
from ..lifecycle import STEP_RECORD, new_step, step_to
from ..models import Run, StepRun, StepStatus
from . import effects
from .batch import Batch
from .policy import NodeSettings, StepTimeout, backoff_seconds


class OutcomeRecorder(abc.ABC):
    """Writes a run's step outcomes and its end; the executor decides what to write."""

    run: Run
    owner: str
    graph: FlowGraph
    batch: Batch
    steps: dict[str, StepRun]
    steps_executed: int
    response_changed: bool
    lease_released: bool

    @abc.abstractmethod
    def _database_now(self) -> datetime:
        """The database's clock (the executor reads it once per claim)."""

    def _new_step_row(self, node: Node, attempt: int) -> StepRun:
        """The row of ``node``'s ``attempt`` of this run, not written yet."""
        return new_row(
            StepRun,
            run=self.run,
            node_id=node.id,
            block_type=node.type,
            block_version=node.block.version,
            attempt=attempt,
        )

    def _mark_started(
        self, node: Node, attempt: int, row: StepRun | None, node_input: Any, started: datetime
    ) -> StepRun:
        if row is None:
            row = self._new_step_row(node, attempt)
        step_to(row, lifecycle.STEP_START, StepStatus.RUNNING)
        row.input, row.started_at = node_input, started
        self.batch.save(row)
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
        row = row or self._new_step_row(node, attempt)
        row.input, row.started_at = node_input, started or timezone.now()
        row.meta = {**(row.meta or {}), **result.meta}
        if result.wait is not None:
            self._park(row, result.wait)
        else:
            step_to(row, STEP_RECORD, StepStatus.SUCCEEDED)
            row.output, row.port = result.output, result.port
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
        step_to(row, STEP_RECORD, StepStatus.WAITING)
        row.wait_kind, row.wait_reference = wait.kind, wait.reference
        row.wait_deadline, row.wait_state, row.resume_signal = wait.deadline, wait.state, None

    def _record_failure(
        self,
        node: Node,
        attempt: int,
        row: StepRun | None,
        node_input: Any,
        started: datetime | None,
        clock: float,
        error: BaseException,
        node_settings: NodeSettings,
    ) -> None:
        retryable = isinstance(error, StepTimeout) or bool(getattr(error, "retryable", False))
        row = row or self._new_step_row(node, attempt)
        step_to(row, STEP_RECORD, StepStatus.FAILED)
        row.input, row.started_at = node_input, started or timezone.now()
        row.finished_at, row.duration_ms = timezone.now(), (time.perf_counter() - clock) * 1000
        row.error = {
            "message": getattr(error, "message", None) or str(error),
            "class": "transient" if retryable else "permanent",
            "type": type(error).__name__,
            "details": getattr(error, "details", {}) or {},
        }
        if isinstance(error, ExpressionError):
            row.error["details"] = {"expression": error.expression, "reason": error.reason}
        self.batch.save(row)
        self.steps[node.id] = row
        self.steps_executed += 1
        if retryable and attempt < node_settings.max_attempts:
            self._schedule_retry(node, attempt + 1, node_settings)
        elif self._has_error_port(node):
            self._take_error_port(node, row)
        effects.step_event(self.run, self.steps[node.id])

    def _schedule_retry(self, node: Node, attempt: int, node_settings: NodeSettings) -> None:
        delay = backoff_seconds(attempt - 1, node_settings)
        row = new_step(
            lifecycle.STEP_SCHEDULE_RETRY,
            StepStatus.RETRY_SCHEDULED,
            run=self.run,
            node_id=node.id,
            block_type=node.type,
            block_version=node.block.version,
            attempt=attempt,
            next_attempt_at=self._database_now() + timedelta(seconds=delay),
        )
        row.save(force_insert=True)
        self.steps[node.id] = row
        effects.retry_scheduled(self.run, delay)

    def _has_error_port(self, node: Node) -> bool:
        return any(edge.port == "error" for edge in self.graph.outgoing.get(node.id, ()))

    def _take_error_port(self, node: Node, failed: StepRun) -> None:
        """A failure with an ``error`` edge completes the step down that port (fallback)."""
        row = new_step(
            STEP_RECORD,
            StepStatus.SUCCEEDED,
            run=self.run,
            node_id=node.id,
            block_type=node.type,
            block_version=node.block.version,
            attempt=failed.attempt + 1,
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
        row = new_step(
            lifecycle.STEP_SKIP,
            StepStatus.SKIPPED,
            run=self.run,
            node_id=node.id,
            block_type=node.type,
            block_version=node.block.version,
        )
        self._save_outcome(row)

    def _save_outcome(self, row: StepRun) -> bool:
        """Record a step outcome with the batch's INSERT (a new row) or UPDATE (an attempt
        row that exists). If another worker recorded an outcome first (possible only when
        our lease expired mid-step), the unique index raises IntegrityError, which rolls
        back the batch: the other worker's outcome stands."""
        self.batch.save(row)
        self.steps[row.node_id] = row
        return True

    def _store_response(self) -> None:
        """Before the batch commits: a ``flow.respond`` response not yet written."""
        if self.response_changed:
            Run.objects.filter(pk=self.run.pk).update(response=self.run.response)
            self.response_changed = False

    def _finish(
        self, status: str, *, output: Any = None, error: dict[str, Any] | None = None
    ) -> None:
        """End the run with the batch's next write, which also gives the lease back and
        stores a response not yet written."""
        self.batch.finishing.append(
            lifecycle.Finish(
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
