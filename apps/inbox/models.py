"""Review tasks: the human decisions flows wait for.

A ``human.approval`` step creates one ``ReviewTask`` (one per run and node) and parks the
run. A reviewer's decision, or the task's due time passing, ends the wait through
``apps.runs.services.step_resume``; the run then continues down the matching port. With
four eyes (``required_approvals`` > 1) each distinct approver leaves a ``ReviewApproval``
row; the last one needed decides the task.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.core.models import WorkspaceOwned


class TaskStatus(models.TextChoices):
    OPEN = "open", "Open"
    ESCALATED = "escalated", "Escalated"  # still open, assigned to the escalation target
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    EXPIRED = "expired", "Expired"


OPEN_TASK_STATUSES = (TaskStatus.OPEN, TaskStatus.ESCALATED)


class Decision(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"
    REQUEST_CHANGES = "request_changes", "Request changes"


# The task status and the block's output port each decision leads to.
DECISION_OUTCOMES: dict[str, tuple[str, str]] = {
    Decision.APPROVE: (TaskStatus.APPROVED, "approved"),
    Decision.REJECT: (TaskStatus.REJECTED, "rejected"),
    Decision.REQUEST_CHANGES: (TaskStatus.CHANGES_REQUESTED, "changes_requested"),
}


class TimeoutAction(models.TextChoices):
    EXPIRE = "expire", "Expire (take the expired port)"
    ESCALATE = "escalate", "Escalate to another assignee"
    APPROVE = "approve", "Approve automatically"
    REJECT = "reject", "Reject automatically"


class ReviewTask(WorkspaceOwned):
    """One case waiting for a person. Written only by ``apps.inbox.services``.

    ``version`` increases with every change; a decision may name the version the reviewer
    saw, and is refused (409) when the task changed since.
    """

    run = models.ForeignKey("runs.Run", on_delete=models.CASCADE, related_name="review_tasks")
    flow = models.ForeignKey("flows.Flow", on_delete=models.CASCADE, related_name="+")
    node_id = models.CharField(max_length=64)
    # Which of the node's calls the task is about (an ai.agent step asks about each of its
    # tool calls); empty for a human.approval step's one task.
    call_key = models.CharField(max_length=64, blank=True, default="")
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    # What the reviewer sees: {label: value}, evaluated from the run when the task was made.
    data = models.JSONField(default=dict)
    # Extra decision fields: [{name, label, type, required, options}].
    form = models.JSONField(default=list)
    assignee_role = models.CharField(max_length=20, blank=True)
    assignee_users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    # Reviewer groups (Settings → Groups) whose members may decide, read when deciding.
    assignee_groups = models.ManyToManyField("accounts.ReviewerGroup", blank=True, related_name="+")
    required_approvals = models.PositiveSmallIntegerField(default=1)
    priority = models.IntegerField(default=0)  # higher is more urgent
    due_at = models.DateTimeField(null=True, blank=True)
    on_timeout = models.CharField(
        max_length=20, choices=TimeoutAction.choices, default=TimeoutAction.EXPIRE
    )
    # {"role": ..., "users": [...], "due_in_hours": ...} used once when the due time passes.
    escalation = models.JSONField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=TaskStatus.choices, default=TaskStatus.OPEN)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    decision = models.CharField(max_length=20, choices=Decision.choices, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True)
    decision_data = models.JSONField(default=dict, blank=True)
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-priority", "due_at", "created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "node_id", "call_key"], name="one_task_per_run_node"
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "status", "-priority"]),
            models.Index(
                fields=["workspace", "due_at"],
                name="open_task_due",
                condition=Q(status__in=["open", "escalated"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_TASK_STATUSES

    @property
    def is_overdue(self) -> bool:
        return self.is_open and self.due_at is not None and self.due_at < timezone.now()

    @property
    def port(self) -> str:
        return {outcome[0]: outcome[1] for outcome in DECISION_OUTCOMES.values()}.get(
            self.status, "expired" if self.status == TaskStatus.EXPIRED else ""
        )


class ReviewApproval(models.Model):
    """One reviewer's approval of a four-eyes task: a person counts once."""

    id = models.BigAutoField(primary_key=True)
    task = models.ForeignKey(ReviewTask, on_delete=models.CASCADE, related_name="approvals")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    comment = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["task", "user"], name="one_approval_per_reviewer"),
        ]

    def __str__(self) -> str:
        return f"{self.user} approved {self.task_id}"
