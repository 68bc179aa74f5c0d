"""Every write to review tasks: creating them for the approval block, claiming, deciding,
and what happens when their due time passes.

Decisions take the task's row lock and resume the run in the same transaction, so of two
reviewers deciding at once exactly one wins, and the run resumes once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Membership, Role
from apps.accounts.permissions import Capability, can
from apps.audit.services import audit_record
from apps.core.events import publish_workspace_event_on_commit
from apps.runs.models import TERMINAL_RUN_STATUSES

from .models import (
    DECISION_OUTCOMES,
    OPEN_TASK_STATUSES,
    Decision,
    ReviewApproval,
    ReviewTask,
    TaskStatus,
    TimeoutAction,
)

MAX_COMMENT = 5000


class TaskError(Exception):
    """A task action was refused; nothing changed. ``code`` maps to the HTTP status:
    ``forbidden`` 403, ``conflict`` 409, ``invalid`` 400."""

    status_codes = {"forbidden": 403, "conflict": 409, "invalid": 400}

    def __init__(self, message: str, *, code: str = "conflict", fields: dict | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.fields = fields or {}

    @property
    def status(self) -> int:
        return self.status_codes[self.code]


# --- who may act ------------------------------------------------------------------------
def is_assignee(task: ReviewTask, user: Any, membership: Membership) -> bool:
    """Named on the task, or holding its role; admins may act on every task."""
    if membership.role == Role.ADMIN:
        return True
    if task.assignee_role and membership.role == task.assignee_role:
        return True
    if task.assignee_groups.filter(members=user).exists():
        return True
    return task.assignee_users.filter(pk=user.pk).exists()


def decision_refusal(task: ReviewTask, user: Any, membership: Membership) -> TaskError | None:
    """Why ``user`` may not decide ``task`` now, or None when they may."""
    if not can(membership, Capability.DECIDE_TASKS):
        return TaskError(f"Your role ({membership.role}) cannot decide tasks.", code="forbidden")
    if not task.is_open:
        return TaskError(f"This task was already {task.get_status_display().lower()}.")
    if task.run.status in TERMINAL_RUN_STATUSES:
        return TaskError(f"The run is {task.run.status}: there is nothing left to decide.")
    if not is_assignee(task, user, membership):
        return TaskError("This task is not assigned to you or your role.", code="forbidden")
    if task.requested_by_id == user.pk:
        return TaskError("You requested this case, so you cannot decide it.", code="forbidden")
    if task.claimed_by_id and task.claimed_by_id != user.pk:
        return TaskError(f"{task.claimed_by} has claimed this task.")
    if task.approvals.filter(user=user).exists():
        return TaskError("You have already approved this task; another reviewer must too.")
    return None


def _locked(task_id: Any, workspace: Any) -> ReviewTask:
    task = (
        ReviewTask.objects.select_for_update(of=("self",))
        .filter(pk=task_id, workspace=workspace)
        .select_related("run", "flow", "claimed_by")
        .first()
    )
    if task is None:
        raise ReviewTask.DoesNotExist("No such task.")
    return task


def _touch(task: ReviewTask, *fields: str) -> None:
    task.version += 1
    task.save(update_fields=[*fields, "version", "updated_at"])


def _task_event(task: ReviewTask, change: str, toast: str = "") -> None:
    event = {
        "type": "inbox.task",
        "change": change,
        "task": str(task.id),
        "status": task.status,
        "title": task.title,
    }
    if toast:
        event["message"] = toast
    publish_workspace_event_on_commit(task.workspace_id, event)
    if change in ("created", "escalated"):
        _email_on_commit(task)


def _email_on_commit(task: ReviewTask) -> None:
    from .tasks import notify_task

    transaction.on_commit(lambda: notify_task.delay(str(task.id)))


# --- claiming ---------------------------------------------------------------------------
def task_claim(*, task: ReviewTask, actor: Any, membership: Membership) -> ReviewTask:
    """Take the task so other reviewers see it is being worked on."""
    with transaction.atomic():
        locked = _locked(task.pk, membership.workspace)
        refusal = decision_refusal(locked, actor, membership)
        if refusal is not None:
            raise refusal
        locked.claimed_by, locked.claimed_at = actor, timezone.now()
        _touch(locked, "claimed_by", "claimed_at")
        _audit_claim(locked, actor, "task.claimed", f"claimed: {locked.title}")
        _task_event(locked, "claimed")
    return locked


def task_release(*, task: ReviewTask, actor: Any, membership: Membership) -> ReviewTask:
    """Give a claimed task back to the queue (the claimer or an admin)."""
    with transaction.atomic():
        locked = _locked(task.pk, membership.workspace)
        if locked.claimed_by_id is None:
            return locked
        if locked.claimed_by_id != actor.pk and membership.role != Role.ADMIN:
            raise TaskError(f"{locked.claimed_by} has claimed this task.", code="forbidden")
        claimer = locked.claimed_by
        locked.claimed_by, locked.claimed_at = None, None
        _touch(locked, "claimed_by", "claimed_at")
        _audit_claim(locked, actor, "task.released", f"released {claimer}'s claim: {locked.title}")
        _task_event(locked, "released")
    return locked


def _audit_claim(task: ReviewTask, actor: Any, action: str, summary: str) -> None:
    """Who held a case, and when, is part of how it was decided."""
    audit_record(
        workspace_id=task.workspace_id,
        action=action,
        actor=actor,
        object_type="review_task",
        object_id=task.id,
        summary=summary,
        data={"task": str(task.id), "run": str(task.run_id), "node": task.node_id},
    )


# --- deciding ---------------------------------------------------------------------------
def _validated_form(task: ReviewTask, data: dict[str, Any] | None) -> dict[str, Any]:
    data = data or {}
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field in task.form:
        name, kind = field["name"], field.get("type", "text")
        value: Any = data.get(name)
        if value in (None, "") and kind != "boolean":
            if field.get("required"):
                errors[name] = "This field is required."
            continue
        if kind == "number":
            try:
                value = float(value)
            except (TypeError, ValueError):
                errors[name] = "Enter a number."
                continue
        elif kind == "boolean":
            value = value in (True, "true", "on", "1", 1)
        else:
            value = str(value)[:MAX_COMMENT]
            if kind == "select" and field.get("options") and value not in field["options"]:
                errors[name] = "Choose one of the options."
                continue
        values[name] = value
    if errors:
        raise TaskError("Some decision fields are invalid.", code="invalid", fields=errors)
    return values


def task_decide(
    *,
    task: ReviewTask,
    actor: Any,
    membership: Membership,
    decision: str,
    comment: str = "",
    data: dict[str, Any] | None = None,
    expected_version: int | None = None,
) -> ReviewTask:
    """Approve, reject or request changes, and resume the run when the task is decided.

    Raises ``TaskError`` (nothing changed) when the actor may not decide, the task is no
    longer open or changed since ``expected_version``, a comment is missing for a
    rejection or change request, or the decision fields are invalid. With four eyes an
    approval that is not the last needed is recorded and the task stays open.
    """
    if decision not in Decision.values:
        raise TaskError(f"Unknown decision {decision!r}.", code="invalid")
    if decision not in decisions_offered(task):
        raise TaskError(
            "This flow has no path for a change request (nothing would act on it): "
            "approve or reject.",
            code="invalid",
        )
    comment = (comment or "").strip()[:MAX_COMMENT]
    if decision != Decision.APPROVE and not comment:
        raise TaskError(
            "A comment is required to reject or request changes.",
            code="invalid",
            fields={"comment": "Say why."},
        )
    with transaction.atomic():
        locked = _locked(task.pk, membership.workspace)
        refusal = decision_refusal(locked, actor, membership)
        if refusal is not None:
            raise refusal
        if expected_version is not None and expected_version != locked.version:
            raise TaskError("This task changed since you opened it; reload and decide again.")
        values = _validated_form(locked, data)
        if decision == Decision.APPROVE:
            ReviewApproval.objects.create(task=locked, user=actor, comment=comment, data=values)
            if locked.approvals.count() < locked.required_approvals:
                _touch(locked, "status")
                _audit_decision(locked, actor, "task.approval_recorded", comment)
                _task_event(locked, "approved_once")
                return locked
        _finish(locked, decision=decision, actor=actor, comment=comment, data=values)
    return locked


def decisions_offered(task: ReviewTask) -> list[str]:
    """The decisions a reviewer may take. Approving or rejecting may end a run; a change
    request is offered only where the flow goes on from it, else the run would end
    "succeeded" with nobody acting on the request."""
    from apps.runs.engine import graph_for

    ports = {edge.port for edge in graph_for(task.run).outgoing.get(task.node_id, ())}
    return [
        decision
        for decision in Decision.values
        if decision != Decision.REQUEST_CHANGES or DECISION_OUTCOMES[decision][1] in ports
    ]


def _finish(
    task: ReviewTask, *, decision: str, actor: Any, comment: str, data: dict[str, Any]
) -> None:
    """Record the final decision and resume the run (inside the caller's transaction)."""
    from apps.runs.services import step_resume

    status = DECISION_OUTCOMES[decision][0]
    task.status, task.decision, task.decided_by = status, decision, actor
    task.decided_at, task.comment, task.decision_data = timezone.now(), comment, data
    _touch(task, "status", "decision", "decided_by", "decided_at", "comment", "decision_data")
    if not step_resume(run_id=task.run_id, node_id=task.node_id, signal=decision_signal(task)):
        raise TaskError(
            "The run is no longer waiting for this task: its due time passed or the run was cancelled."
        )
    _audit_decision(task, actor, "task.decided", comment)
    _task_event(task, "decided")


def decision_signal(task: ReviewTask) -> dict[str, Any]:
    """What the approval block's ``resume`` receives: the decision and who took it."""
    approvers = [
        {"reviewer": approval.user.username, "comment": approval.comment}
        for approval in task.approvals.select_related("user")
    ]
    return {
        "port": task.port,
        "task": str(task.id),
        "decision": task.decision or task.status,
        "reviewer": task.decided_by.username if task.decided_by else "system",
        "comment": task.comment,
        "data": task.decision_data,
        "decided_at": (task.decided_at or timezone.now()).isoformat(),
        "approvals": approvers,
        "shown": task.data,
    }


def _audit_decision(task: ReviewTask, actor: Any, action: str, comment: str) -> None:
    audit_record(
        workspace_id=task.workspace_id,
        action=action,
        actor=actor,
        actor_label="" if actor else "system",
        object_type="review_task",
        object_id=task.id,
        summary=f"{task.get_status_display().lower()}: {task.title}",
        data={
            "task": str(task.id),
            "run": str(task.run_id),
            "node": task.node_id,
            "status": task.status,
            "decision": task.decision,
            "comment": comment,
            "approvals": task.approvals.count(),
            "required_approvals": task.required_approvals,
        },
    )


# --- due time ---------------------------------------------------------------------------
def task_timeout(*, task_id: Any) -> dict[str, Any]:
    """The due time passed (the run engine's wait deadline). Escalate once if configured,
    else take the timeout action. Returns ``{"action": "escalated", "due_at": ...}`` or a
    decision signal for the block (call inside the engine's transaction)."""
    task = ReviewTask.objects.select_for_update(of=("self",)).get(pk=task_id)
    if task.status in OPEN_TASK_STATUSES:
        if task.on_timeout == TimeoutAction.ESCALATE and task.escalated_at is None:
            return _escalate(task)
        if task.on_timeout in (TimeoutAction.APPROVE, TimeoutAction.REJECT):
            task.status, _ = DECISION_OUTCOMES[task.on_timeout]
            task.decision = task.on_timeout
            task.comment = "Decided automatically: the due time passed."
        else:
            task.status, task.comment = TaskStatus.EXPIRED, "The due time passed."
        task.decided_at = timezone.now()
        _touch(task, "status", "decision", "comment", "decided_at")
        _audit_decision(task, None, "task.timed_out", task.comment)
        _task_event(task, "expired")
    return {**decision_signal(task), "timeout": True}


def _escalate(task: ReviewTask) -> dict[str, Any]:
    escalation = task.escalation or {}
    task.assignee_role = escalation.get("role") or ""
    task.assignee_users.set(_users_named(task.workspace_id, escalation.get("users", [])))
    hours = escalation.get("due_in_hours")
    task.due_at = timezone.now() + timedelta(hours=hours) if hours else None
    task.status, task.escalated_at = TaskStatus.ESCALATED, timezone.now()
    task.claimed_by, task.claimed_at = None, None
    _touch(task, "assignee_role", "due_at", "status", "escalated_at", "claimed_by", "claimed_at")
    _audit_decision(task, None, "task.escalated", "")
    _task_event(task, "escalated", toast=f"Escalated: {task.title}")
    return {"action": "escalated", "due_at": task.due_at.isoformat() if task.due_at else None}


def _users_named(workspace_id: Any, usernames: list[str]) -> list[Any]:
    return list(
        get_user_model().objects.filter(
            username__in=usernames, memberships__workspace_id=workspace_id
        )
    )


def _groups_named(workspace_id: Any, slugs: list[str]) -> list[Any]:
    """The workspace's reviewer groups by slug; a name that is not one fails the step,
    so a task is never left that nobody in the group could decide."""
    from apps.accounts.models import ReviewerGroup
    from apps.blocks.base import BlockError

    groups = list(ReviewerGroup.objects.filter(workspace_id=workspace_id, slug__in=slugs))
    missing = sorted(set(slugs) - {group.slug for group in groups})
    if missing:
        raise BlockError(
            f"no reviewer group {', '.join(map(repr, missing))} in this workspace "
            "(Settings → Groups)",
            retryable=False,
        )
    return groups


# --- the service the approval block uses -------------------------------------------------
class ApprovalService:
    """``ctx.service("approvals")``: bound to the run's workspace; the block's only way to
    reach review tasks."""

    def __init__(self, workspace_id: Any):
        self.workspace_id = workspace_id

    def create(
        self,
        *,
        run_id: Any,
        node_id: str,
        title: str,
        description: str,
        data: dict[str, Any],
        form: list[dict[str, Any]],
        assignee_role: str,
        assignee_users: list[str],
        required_approvals: int,
        priority: int,
        due_at: datetime | None,
        on_timeout: str,
        escalation: dict[str, Any] | None,
        assignee_groups: list[str] | None = None,
        call_key: str = "",
    ) -> str:
        """Create the run node's task (once: a re-executed step gets the same task);
        ``call_key`` tells apart the tasks of one node's calls (an agent's tool calls)."""
        from apps.runs.models import Run

        run = Run.objects.get(pk=run_id, workspace_id=self.workspace_id)
        task, created = ReviewTask.objects.get_or_create(
            run=run,
            node_id=node_id,
            call_key=call_key,
            defaults={
                "workspace_id": self.workspace_id,
                "flow_id": run.flow_id,
                "title": title[:300],
                "description": description,
                "data": data,
                "form": form,
                "assignee_role": assignee_role,
                "required_approvals": required_approvals,
                "priority": priority,
                "due_at": due_at,
                "on_timeout": on_timeout,
                "escalation": escalation,
                "requested_by": run.requested_by,
            },
        )
        if created:
            task.assignee_users.set(_users_named(self.workspace_id, assignee_users))
            task.assignee_groups.set(_groups_named(self.workspace_id, assignee_groups or []))
            _task_event(task, "created", toast=f"New task: {task.title}")
        return str(task.id)

    def timeout(self, task_id: str) -> dict[str, Any]:
        return task_timeout(task_id=task_id)
