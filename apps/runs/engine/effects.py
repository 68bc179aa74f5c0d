"""What follows a state change: the run row, live events, audit records, follow-up work.

Kept apart from the executor so the algorithm reads as an algorithm. Every function here
is called after the row it describes is written; events and Celery messages go out after
commit (``on_commit``), so nobody sees or acts on a state that was rolled back.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from django.db import transaction

from apps.audit.services import audit_record
from apps.core.events import publish_run_event
from apps.flows.definition import Node

from .. import lifecycle
from ..models import Run, RunStatus, StepRun, StepStatus
from .dispatch import dispatcher

# Block categories whose outcome is a decision worth explaining later.
DECISION_CATEGORIES = {"model", "policy", "human"}


def step_event(run: Run, step: StepRun) -> None:
    _run_event_on_commit(
        run,
        {
            "type": "run.step",
            "run": str(run.id),
            "flow": str(run.flow_id),
            "node": step.node_id,
            "status": step.status,
            "attempt": step.attempt,
            "port": step.port,
        },
    )


def _run_event_on_commit(run: Run, event: dict[str, Any]) -> None:
    # The engine batches steps in one transaction: a page must not see a step that a
    # rollback undoes, so the event waits for the commit (at once outside a transaction).
    transaction.on_commit(lambda: publish_run_event(run.workspace_id, run.id, event))


def step_recorded(run: Run, node: Node, step: StepRun) -> None:
    """What follows a recorded outcome: a decision's audit record, the live event. (The
    executor stores a ``flow.respond`` response with the run's next write.)"""
    if node.block.category in DECISION_CATEGORIES and step.status == StepStatus.SUCCEEDED:
        flow_name, flow_version = _flow_facts(run)
        audit_record(  # written with the step batch (apps.core.batch_rows)
            workspace_id=run.workspace_id,
            action=f"decision.{node.block.category}",
            actor_label=step.meta.get("reviewer", "") or "system",
            object_type="run",
            object_id=run.id,
            summary=f"{node.type} at {node.id} took '{step.port}' in {flow_name}",
            data=_decision_record(run, step, flow_version),
        )
    step_event(run, step)


def _flow_facts(run: Run) -> tuple[str, Any]:
    """The flow's name and version number for a decision record: those of the published
    version the run follows (immutable, so read once per process), the flow's own for a
    draft run."""
    if run.version_id is None:
        return run.flow.name, "draft"
    return _version_facts(run.version_id)


@lru_cache(maxsize=1024)
def _version_facts(version_id: int) -> tuple[str, int]:
    from apps.flows.models import FlowVersion

    number, name, flow_name = (
        FlowVersion.objects.filter(pk=version_id)
        .values_list("number", "definition__name", "flow__name")
        .get()
    )
    return str(name or flow_name), number


def _decision_record(run: Run, step: StepRun, flow_version: Any) -> dict[str, Any]:
    from apps.audit.redaction import redact_for_workspace

    record: dict[str, Any] = redact_for_workspace(
        run.workspace_id,
        {
            "run": str(run.id),
            "flow": str(run.flow_id),
            "flow_version": flow_version,
            "node": step.node_id,
            "block": step.block_type,
            "input": step.input,
            "result": step.output,
            "port": step.port,
            "meta": step.meta,
            "correlation_id": run.correlation_id,
        },
    )
    return record


def retry_scheduled(run: Run, delay: float) -> None:
    # Short delays get a Celery countdown as a fast path; the reconciler (database clock)
    # is what guarantees the retry happens, so a lost message only delays it.
    if delay <= 60:
        dispatcher().enqueue_advance(run.pk, run.trace_context, countdown=delay)


def run_parked(run: Run, status: str, *, wake_at: datetime | None, requeue: bool = False) -> None:
    before = lifecycle.park(run, status, wake_at=wake_at)
    if before is None:
        # A wait of this run ended (a decision, a deadline) while this advance held it:
        # the run stays queued, and a drain takes it once this advance lets go of it.
        if Run.objects.filter(pk=run.pk, status=RunStatus.QUEUED).exists():
            dispatcher().request_drain()
        return
    if before != status:
        _status_event(run)
    if requeue:
        dispatcher().enqueue_advance(run.pk, run.trace_context, countdown=None)


def runs_finished(finishes: list[lifecycle.Finish]) -> None:
    """End the runs unless they ended already (a cancellation got there first), in one
    statement; then their events and their parents' resumption. A run that had ended
    keeps its end; its lease is given back all the same."""
    if not finishes:
        return
    ended = lifecycle.finish(finishes)
    for finish in finishes:
        if finish.run.pk not in ended:
            Run.objects.filter(pk=finish.run.pk, lease_owner=finish.owner).update(
                lease_owner="", lease_expires_at=None
            )
    runs_ended([finish.run for finish in finishes if finish.run.pk in ended])


def runs_ended(runs: list[Run]) -> None:
    """What follows runs' ends, once written: their events and their parents' resumption."""
    for run in runs:
        _status_event(run)
        if run.parent_run_id:
            _resume_parent(run)


def _status_event(run: Run) -> None:
    _run_event_on_commit(
        run,
        {
            "type": "run.status",
            "run": str(run.id),
            "flow": str(run.flow_id),
            "status": run.status,
        },
    )


def _resume_parent(child: Run) -> None:
    signal = {
        "port": "out" if child.status == RunStatus.SUCCEEDED else "error",
        "status": child.status,
        "output": child.output,
        "error": child.error,
        "run": str(child.id),
    }
    dispatcher().resume_step(run_id=child.parent_run_id, node_id=child.parent_node, signal=signal)
