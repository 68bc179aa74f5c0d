"""Reads of review tasks, always scoped to the actor's workspace and role."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from apps.accounts.models import Membership
from apps.accounts.permissions import Capability, can
from apps.runs.models import TERMINAL_RUN_STATUSES, StepRun, StepStatus

from .models import OPEN_TASK_STATUSES, ReviewTask, TaskStatus

VIEWS = ("mine", "team", "all")
SORTS = {"priority": ("-priority", "due_at", "created_at"), "due": ("due_at", "-priority")}
PAGE_SIZE = 100


@dataclass(frozen=True)
class TaskFilters:
    """What the inbox list shows. Unknown values fall back to the defaults."""

    view: str = "mine"
    status: str = "open"  # open, decided, or one TaskStatus value
    flow: str = ""  # a flow id
    priority: str = ""  # "high" (>= 50) or ""
    due: str = ""  # "overdue", "today" or ""
    search: str = ""
    sort: str = "priority"

    @classmethod
    def from_query(cls, query: Any, membership: Membership) -> TaskFilters:
        view = query.get("view", "mine")
        if view not in VIEWS or (view == "all" and not can(membership, Capability.VIEW_ALL_TASKS)):
            view = "mine"
        return cls(
            view=view,
            status=query.get("status", "open") or "open",
            flow=query.get("flow", ""),
            priority=query.get("priority", ""),
            due=query.get("due", ""),
            search=query.get("q", "").strip()[:100],
            sort=query.get("sort", "priority") if query.get("sort") in SORTS else "priority",
        )


def _scope(view: str, user: Any, membership: Membership) -> Q:
    if view == "all":
        return Q()
    groups = Q(assignee_groups__members=user)
    if view == "team":
        return Q(assignee_role=membership.role) | groups
    assigned = Q(assignee_users=user) | Q(assignee_role=membership.role) | groups
    return (assigned & (Q(claimed_by__isnull=True) | Q(claimed_by=user))) | Q(claimed_by=user)


def _open() -> Q:
    # A task whose run was cancelled can no longer be decided: it leaves the queue.
    return Q(status__in=OPEN_TASK_STATUSES) & ~Q(run__status__in=TERMINAL_RUN_STATUSES)


def task_list(*, user: Any, membership: Membership, filters: TaskFilters) -> QuerySet[ReviewTask]:
    """The tasks of ``membership.workspace`` the filters select, for the inbox list."""
    tasks = ReviewTask.objects.filter(workspace=membership.workspace).filter(
        _scope(filters.view, user, membership)
    )
    if filters.status == "open":
        tasks = tasks.filter(_open())
    elif filters.status == "decided":
        tasks = tasks.exclude(status__in=OPEN_TASK_STATUSES)
    elif filters.status in TaskStatus.values:
        tasks = tasks.filter(status=filters.status)
    if filters.flow:
        tasks = tasks.filter(flow_id=filters.flow) if _is_uuid(filters.flow) else tasks.none()
    if filters.priority == "high":
        tasks = tasks.filter(priority__gte=50)
    now = timezone.now()
    if filters.due == "overdue":
        tasks = tasks.filter(due_at__lt=now)
    elif filters.due == "today":
        tasks = tasks.filter(due_at__lt=now + timedelta(days=1))
    if filters.search:
        tasks = tasks.filter(
            Q(title__icontains=filters.search) | Q(flow__name__icontains=filters.search)
        )
    order = SORTS[filters.sort]
    return tasks.select_related("flow", "claimed_by", "decided_by").distinct().order_by(*order)


def task_counts(*, user: Any, membership: Membership) -> dict[str, int]:
    """Open tasks per inbox tab, and how many of mine are overdue (one query)."""
    base = ReviewTask.objects.filter(workspace=membership.workspace).filter(_open())
    mine = _scope("mine", user, membership)
    counts = base.aggregate(
        mine=Count("id", filter=mine, distinct=True),
        team=Count("id", filter=_scope("team", user, membership), distinct=True),
        all=Count("id", distinct=True),
        overdue=Count("id", filter=mine & Q(due_at__lt=timezone.now()), distinct=True),
    )
    if not can(membership, Capability.VIEW_ALL_TASKS):
        counts.pop("all")
    return counts


def task_get(*, workspace: Any, task_id: Any) -> ReviewTask:
    """The task, or 404 when it is not in ``workspace``."""
    task = (
        ReviewTask.objects.filter(workspace=workspace, pk=task_id)
        .select_related("flow", "run", "claimed_by", "decided_by", "requested_by")
        .first()
    )
    if task is None:
        raise Http404("No such task.")
    return task


def task_next(*, task: ReviewTask, user: Any, membership: Membership) -> ReviewTask | None:
    """The next open task in the reviewer's queue after ``task``, for "decide and next"."""
    return (
        task_list(user=user, membership=membership, filters=TaskFilters())
        .exclude(pk=task.pk)
        .first()
    )


def task_history(*, task: ReviewTask) -> list[StepRun]:
    """The run's steps up to the approval (latest attempt of each): what led here."""
    latest: dict[str, StepRun] = {}
    for step in StepRun.objects.filter(run_id=task.run_id).order_by("id"):
        latest[step.node_id] = step
    return [step for step in latest.values() if step.status != StepStatus.SKIPPED]


def decision_reasons(steps: list[StepRun]) -> list[dict[str, Any]]:
    """Model scores and policy reasons from the steps before the approval."""
    reasons = []
    for step in steps:
        meta = step.meta or {}
        if "policy" in meta or "model" in meta or "reasons" in meta:
            reasons.append(
                {
                    "node": step.node_id,
                    "block": step.block_type,
                    "port": step.port,
                    "output": step.output,
                    "reasons": meta.get("reasons", []),
                }
            )
    return reasons


def _is_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
