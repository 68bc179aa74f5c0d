"""Starting, resuming, cancelling and retrying runs.

Every function writes in one transaction and enqueues work only after commit, so a
message never points at a row that does not exist, and a rolled-back request starts
nothing. Postgres, not the broker, decides whether work is due: a lost message delays a
run until the reconciler re-drives it, it never loses it.
"""

from __future__ import annotations

import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from apps.audit.services import audit_record
from apps.core import batch_rows
from apps.core.events import publish_workspace_event_on_commit
from apps.core.tracing import run_trace_context
from apps.flows.models import Flow, FlowVersion

from . import lifecycle
from .models import TERMINAL_RUN_STATUSES, Run, RunStatus, StepRun, StepStatus, Trigger


class RunError(Exception):
    """The run cannot be changed that way (already finished, not waiting, ...)."""


@dataclass(frozen=True)
class StartedRun:
    run: Run
    created: bool  # False when the idempotency key matched an earlier run


def _enqueue(run: Run) -> None:
    """``run`` was (re)queued: after commit, a drain will claim it with others."""
    from .tasks import request_drain

    request_drain()


def run_start(
    *,
    flow: Flow,
    trigger: str,
    payload: dict[str, Any],
    idempotency_key: str | None = None,
    actor: Any = None,
    version: FlowVersion | None = None,
    draft_definition: dict[str, Any] | None = None,
    dry_run: bool = False,
    correlation_id: str | None = None,
    parent: tuple[Run, str] | None = None,
    rerun_of: Run | None = None,
    enqueue: bool = True,
) -> StartedRun:
    """Create a run of ``flow``'s published version (or of ``draft_definition`` for a test
    run) and enqueue it. A repeated ``idempotency_key`` returns the first run unchanged."""
    if draft_definition is None and version is None:
        version = flow.latest_version
        if version is None:
            raise RunError(f"{flow.name} has no published version yet; publish it first")
    if idempotency_key and (existing := run_by_idempotency_key(flow, idempotency_key)):
        return StartedRun(existing, created=False)
    run = run_new(
        flow=flow,
        version=version,
        draft_definition=draft_definition if version is None else None,
        trigger=trigger,
        payload=payload,
        dry_run=dry_run,
        idempotency_key=idempotency_key,
        actor=actor,
        correlation_id=correlation_id,
        parent=parent,
        rerun_of=rerun_of,
    )
    try:
        # Alone, the INSERT commits by itself (one round trip, not three); inside a
        # caller's transaction a savepoint keeps a duplicate key from spoiling it.
        with transaction.atomic() if connection.in_atomic_block else nullcontext():
            run.save(force_insert=True)
            if enqueue:
                _enqueue(run)
    except IntegrityError:
        # Two deliveries with the same key raced; the other one won.
        existing = Run.objects.get(
            workspace_id=flow.workspace_id, flow=flow, idempotency_key=idempotency_key
        )
        return StartedRun(existing, created=False)
    _publish_created(run)
    return StartedRun(run, created=True)


def run_new(
    *,
    flow: Flow,
    version: FlowVersion | None,
    trigger: str,
    payload: dict[str, Any],
    idempotency_key: str | None = None,
    actor: Any = None,
    draft_definition: dict[str, Any] | None = None,
    dry_run: bool = False,
    correlation_id: str | None = None,
    parent: tuple[Run, str] | None = None,
    rerun_of: Run | None = None,
) -> Run:
    """A queued run of ``flow``, not saved yet, its trace started (``run_start`` and
    ``runs_insert`` save it)."""
    run = batch_rows.new_row(
        Run,
        workspace_id=flow.workspace_id,
        flow=flow,
        version=version,
        draft_definition=draft_definition,
        trigger=Trigger(trigger),
        input=payload,
        dry_run=dry_run,
        idempotency_key=idempotency_key or None,
        requested_by=actor,
        correlation_id=correlation_id or uuid.uuid4().hex,
        parent_run=parent[0] if parent else None,
        parent_node=parent[1] if parent else "",
        rerun_of=rerun_of,
    )
    run.trace_context = run_trace_context(run=run)
    run.concurrency_limit = _concurrency_limit(
        version.definition if version is not None else draft_definition
    )
    return run


def _concurrency_limit(definition: dict[str, Any] | None) -> int | None:
    """The definition's ``concurrency.limit`` (a draft's may not be valid yet)."""
    concurrency = (definition or {}).get("concurrency")
    limit = concurrency.get("limit") if isinstance(concurrency, dict) else None
    return limit if isinstance(limit, int) and limit > 0 else None


def runs_insert(runs: list[Run]) -> set[Any]:
    """Save many new runs (``run_new``) in one statement and queue them: one drain request
    for all. A run whose idempotency key is taken already is not saved; returns the ids of
    those saved. Call inside a transaction: drain request and events follow its commit."""
    if not runs:
        return set()
    batch_rows.insert_rows(Run, runs, ignore_conflicts=True)
    keyed = [run.pk for run in runs if run.idempotency_key]
    saved = {run.pk for run in runs if not run.idempotency_key}
    if keyed:  # a conflict left its row out: the rows that are there are ours
        saved.update(Run.objects.filter(pk__in=keyed).values_list("pk", flat=True))
    if saved:
        _enqueue(runs[0])
    for run in runs:
        if run.pk in saved:
            _publish_created(run)
    return saved


def run_by_idempotency_key(flow: Flow, idempotency_key: str) -> Run | None:
    """The run of ``flow`` started with ``idempotency_key``, if any."""
    return Run.objects.filter(
        workspace_id=flow.workspace_id, flow=flow, idempotency_key=idempotency_key
    ).first()


def _publish_created(run: Run) -> None:
    publish_workspace_event_on_commit(
        run.workspace_id,
        {"type": "run.status", "run": str(run.id), "flow": str(run.flow_id), "status": run.status},
    )


def step_resume(*, run_id: Any, node_id: str, signal: dict[str, Any]) -> bool:
    """End a step's wait with ``signal`` (a decision, a callback, ``{"timeout": True}``)
    and put the run back in the queue. Returns False when the step is not waiting (it was
    resumed already, or the run was cancelled): resuming twice is harmless."""
    with transaction.atomic():
        run = Run.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status in TERMINAL_RUN_STATUSES:
            return False
        step = (
            StepRun.objects.select_for_update()
            .filter(run=run, node_id=node_id, status=StepStatus.WAITING)
            .order_by("-attempt")
            .first()
        )
        if step is None:
            return False
        lifecycle.resume(run, step, signal)
        _enqueue(run)
    return True


def run_cancel(*, run: Run, actor: Any) -> Run:
    with transaction.atomic():
        locked = Run.objects.select_for_update().get(pk=run.pk)
        if locked.status in TERMINAL_RUN_STATUSES:
            raise RunError(f"the run has already {locked.status}")
        lifecycle.cancel(locked, error={"message": f"cancelled by {actor}"})
        audit_record(
            workspace_id=locked.workspace_id,
            action="run.cancelled",
            actor=actor,
            object_type="run",
            object_id=locked.id,
            summary=f"cancelled a run of {locked.flow.name}",
        )
    publish_workspace_event_on_commit(
        locked.workspace_id,
        {
            "type": "run.status",
            "run": str(locked.id),
            "flow": str(locked.flow_id),
            "status": locked.status,
        },
    )
    return locked


def run_retry_from_failed(*, run: Run, actor: Any) -> Run:
    """Retry a failed run in place: the failed (or in-doubt) step gets a new attempt;
    completed steps keep their outcomes and are not executed again."""
    with transaction.atomic():
        locked = Run.objects.select_for_update().get(pk=run.pk)
        if locked.status != RunStatus.FAILED:
            raise RunError("only failed runs can be retried from the failed step")
        failed = _failed_steps(locked)
        if not failed:
            raise RunError("the run has no failed step to retry")
        lifecycle.retry(locked, failed)
        audit_record(
            workspace_id=locked.workspace_id,
            action="run.retried",
            actor=actor,
            object_type="run",
            object_id=locked.id,
            summary=f"retried {', '.join(s.node_id for s in failed)} of {locked.flow.name}",
        )
        _enqueue(locked)
    return locked


def _failed_steps(run: Run) -> list[StepRun]:
    latest: dict[str, StepRun] = {}
    for step in StepRun.objects.filter(run=run).order_by("node_id", "attempt"):
        latest[step.node_id] = step
    return [s for s in latest.values() if s.status in (StepStatus.FAILED, StepStatus.IN_DOUBT)]


def run_rerun(*, run: Run, actor: Any) -> Run:
    """Start the same input again on the flow's latest published version; the new run
    links to the old one."""
    started = run_start(
        flow=run.flow,
        trigger=Trigger.RETRY,
        payload=run.input,
        actor=actor,
        correlation_id=uuid.uuid4().hex,
        rerun_of=run,
    )
    return started.run


@dataclass(frozen=True)
class BulkOutcome:
    run_id: str
    ok: bool
    result_id: str | None = None  # the retried run (same id) or the new re-run
    message: str = ""


def run_bulk_action(*, runs: Any, action: str, actor: Any) -> list[BulkOutcome]:
    """Retry (from the failed step) or re-run (latest version) each of ``runs``, a
    queryset the caller already scoped to its workspace. One run's refusal does not
    stop the others; each outcome says what happened."""
    operation = {"retry": run_retry_from_failed, "rerun": run_rerun}[action]
    outcomes = []
    for run in runs:
        try:
            result = operation(run=run, actor=actor)
        except RunError as error:
            outcomes.append(BulkOutcome(str(run.id), False, message=str(error)))
        else:
            outcomes.append(BulkOutcome(str(run.id), True, result_id=str(result.id)))
    return outcomes


# --- Retention ------------------------------------------------------------------------

PURGE_BATCH = 500


@dataclass(frozen=True)
class PurgeReport:
    """What a purge removed (or, for a dry run, would remove) in one workspace."""

    workspace_id: Any
    workspace_slug: str
    retention_days: int
    cutoff: Any
    runs: int
    steps: int


def _expired_runs(workspace: Any, cutoff: Any) -> Any:
    """Finished runs of the workspace that ended before ``cutoff``. A run whose parent or
    any child is still queued, running or waiting is kept: the family may still need it."""
    return (
        Run.objects.filter(workspace=workspace, status__in=TERMINAL_RUN_STATUSES)
        .filter(Q(finished_at__lt=cutoff) | Q(finished_at__isnull=True, updated_at__lt=cutoff))
        .exclude(parent_run__isnull=False, parent_run__status__in=_UNFINISHED)
        .exclude(child_runs__status__in=_UNFINISHED)
        .order_by()
    )


_UNFINISHED = [status for status in RunStatus.values if status not in TERMINAL_RUN_STATUSES]


def runs_purge(
    *, workspaces: Any = None, now: Any = None, dry_run: bool = False
) -> list[PurgeReport]:
    """Delete finished runs (and their steps and review tasks) older than each workspace's
    retention (Settings → Data). Waiting, queued and running runs are never touched, and
    audit events are kept; each workspace's purge is recorded as a ``runs.purged`` audit
    event, in the same transaction as the deletion. ``dry_run`` only counts."""
    from apps.accounts.models import Workspace
    from apps.audit.selectors import data_settings_get

    now = now or timezone.now()
    reports = []
    for workspace in workspaces if workspaces is not None else Workspace.objects.order_by("slug"):
        days = data_settings_get(workspace_id=workspace.id).retention_days
        cutoff = now - timedelta(days=days)
        expired = _expired_runs(workspace, cutoff)
        if dry_run:
            ids = list(expired.values_list("pk", flat=True).distinct())
            steps = StepRun.objects.filter(run_id__in=ids).count()
            reports.append(PurgeReport(workspace.id, workspace.slug, days, cutoff, len(ids), steps))
            continue
        runs = steps = tasks = 0
        with transaction.atomic():
            while batch := list(expired.values_list("pk", flat=True).distinct()[:PURGE_BATCH]):
                deleted = Run.objects.filter(pk__in=batch).delete()[1]
                runs += deleted.get(Run._meta.label, 0)
                steps += deleted.get(StepRun._meta.label, 0)
                tasks += deleted.get("inbox.ReviewTask", 0)
            if runs:
                audit_record(
                    workspace_id=workspace.id,
                    action="runs.purged",
                    actor_label="retention",
                    object_type="workspace",
                    object_id=workspace.id,
                    summary=f"purged {runs} runs ({steps} steps) finished over {days} days ago",
                    data={
                        "retention_days": days,
                        "cutoff": cutoff.isoformat(),
                        "runs": runs,
                        "steps": steps,
                        "review_tasks": tasks,
                    },
                )
        reports.append(PurgeReport(workspace.id, workspace.slug, days, cutoff, runs, steps))
    return reports
