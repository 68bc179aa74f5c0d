"""Runs and the attempts of their steps: the durable state of execution.

Postgres is the source of truth. Celery messages only say "look at run X"; whoever holds
the run's lease (``lease_expires_at`` in the future, compared with the database clock)
advances it. A step outcome is recorded at most once per (run, node): the partial unique
index ``one_completion_per_node`` makes a second completion impossible.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.core.models import WorkspaceOwned


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    WAITING = "waiting", "Waiting"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


TERMINAL_RUN_STATUSES = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)
ACTIVE_RUN_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)


class StepStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"  # this attempt failed (a later attempt may follow)
    RETRY_SCHEDULED = "retry_scheduled", "Retry scheduled"
    WAITING = "waiting", "Waiting"
    RESUMING = "resuming", "Resuming"
    SKIPPED = "skipped", "Skipped"
    IN_DOUBT = "in_doubt", "In doubt"
    CANCELLED = "cancelled", "Cancelled"


COMPLETED_STEP_STATUSES = (StepStatus.SUCCEEDED, StepStatus.SKIPPED)


class Trigger(models.TextChoices):
    WEBHOOK = "webhook", "Webhook"
    SCHEDULE = "schedule", "Schedule"
    MANUAL = "manual", "Manual"
    TEST = "test", "Test run"
    STREAM = "stream", "Stream"
    EMAIL = "email", "Email"
    SUBFLOW = "subflow", "Sub-flow"
    RETRY = "retry", "Re-run"
    MCP = "mcp", "MCP tool call"
    EVALUATION = "evaluation", "Evaluation"


# Runs that measure a flow rather than do its work: left out of the dashboard's figures.
EVALUATION_TRIGGERS = (Trigger.EVALUATION,)


class Run(WorkspaceOwned):
    """One execution of a flow version (or of a draft, for test runs)."""

    # Every run row is written three times (created, claimed, finished), each time in every
    # index: so no index that another one covers (workspace and flow lead composite ones
    # below), and the mostly empty links are indexed only where set.
    workspace = models.ForeignKey(
        "accounts.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    flow = models.ForeignKey(
        "flows.Flow", on_delete=models.CASCADE, related_name="runs", db_index=False
    )
    version = models.ForeignKey(
        "flows.FlowVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="runs"
    )
    # Drafts change; a test run keeps the exact definition it ran.
    draft_definition = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.QUEUED)
    trigger = models.CharField(max_length=20, choices=Trigger.choices)
    input = models.JSONField(default=dict)
    output = models.JSONField(null=True, blank=True)
    response = models.JSONField(null=True, blank=True)  # what flow.respond set, for webhooks
    error = models.JSONField(null=True, blank=True)
    dry_run = models.BooleanField(default=False)
    correlation_id = models.CharField(max_length=64)
    # NULL (not "") when absent: the uniqueness constraint applies only to given keys.
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    parent_run = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="child_runs",
        db_index=False,
    )
    parent_node = models.CharField(max_length=64, blank=True)
    rerun_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reruns",
        db_index=False,
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # Claims since the last step completed: a message that keeps killing workers is
    # dead-lettered after FLOWGATE["MAX_DELIVERIES"] instead of looping forever.
    deliveries = models.PositiveIntegerField(default=0)
    wake_at = models.DateTimeField(null=True, blank=True)  # earliest due retry or deadline
    # The flow's ``concurrency.limit`` when the run was created: at most this many of the
    # flow's runs hold a lease at once, across every worker (engine/claims.py).
    concurrency_limit = models.PositiveIntegerField(null=True, blank=True)
    # W3C trace context (traceparent, baggage) of the run's start: every task of the run
    # continues this trace (apps/core/tracing.py). Empty when tracing was off.
    trace_context = models.JSONField(default=dict, blank=True)
    # The transaction that ended the run (its 64-bit id), stamped by a database trigger
    # (apps/dashboard/migrations/0002_rollups.py): the dashboard's rollups read the runs
    # ended since their high-water mark through it (``apps.dashboard.rollups``).
    rollup_xid = models.BigIntegerField(null=True, blank=True, editable=False)

    # Not columns: what a claim's SQL returns with the run (apps/runs/engine/claims.py).
    database_now: datetime
    has_steps: bool

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "flow", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="run_idempotency_key_unique",
            )
        ]
        indexes = [
            models.Index(fields=["workspace", "status", "-created_at"]),
            models.Index(fields=["flow", "-created_at"]),
            models.Index(
                fields=["wake_at"], name="run_wake_due", condition=Q(wake_at__isnull=False)
            ),
            # The drain's claim walks it oldest first; an index scan (not a bitmap scan) also
            # marks the entries of runs claimed since as dead, so it stays quick under churn.
            models.Index(
                fields=["created_at"],
                name="run_queued",
                condition=Q(status=RunStatus.QUEUED, lease_owner=""),
            ),
            # A limited flow's runs: those queued (claimed apart) and those leased (counted).
            models.Index(
                fields=["flow"],
                name="run_limited_queued",
                condition=Q(
                    status=RunStatus.QUEUED, lease_owner="", concurrency_limit__isnull=False
                ),
            ),
            models.Index(
                fields=["flow"],
                name="run_limited_leased",
                condition=Q(status=RunStatus.RUNNING, concurrency_limit__isnull=False)
                & ~Q(lease_owner=""),
            ),
            models.Index(fields=["correlation_id"], name="run_correlation_id"),
            models.Index(
                fields=["rollup_xid"], name="run_rollup_xid", condition=Q(rollup_xid__isnull=False)
            ),
            # The dashboard's recent failures (a few rows, newest first) of a workspace.
            models.Index(
                fields=["workspace", "-finished_at", "-created_at"],
                name="run_failed_recent",
                condition=Q(status=RunStatus.FAILED),
            ),
            *(
                models.Index(
                    fields=[link], name=f"run_{link}", condition=Q(**{f"{link}__isnull": False})
                )
                for link in ("requested_by", "parent_run", "rerun_of")
            ),
        ]

    def __str__(self) -> str:
        return f"run {self.id} ({self.status})"

    @property
    def duration_ms(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds() * 1000
        return None


class StepRun(models.Model):
    """One attempt of one node in a run."""

    id = models.BigAutoField(primary_key=True)
    # Indexed by the (run, node_id, attempt) constraint, which starts with it.
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="steps", db_index=False)
    node_id = models.CharField(max_length=64)
    block_type = models.CharField(max_length=80)
    block_version = models.PositiveSmallIntegerField(default=1)
    attempt = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=20, choices=StepStatus.choices)
    input = models.JSONField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    port = models.CharField(max_length=64, blank=True)
    error = models.JSONField(null=True, blank=True)  # {message, class, retryable, details}
    meta = models.JSONField(default=dict)  # model/policy versions, cost, reasons, request
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    wait_kind = models.CharField(max_length=40, blank=True)
    wait_reference = models.CharField(max_length=200, blank=True)
    wait_deadline = models.DateTimeField(null=True, blank=True)
    wait_state = models.JSONField(null=True, blank=True)
    resume_signal = models.JSONField(null=True, blank=True)
    # The transaction that finished the attempt, as ``Run.rollup_xid``.
    rollup_xid = models.BigIntegerField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "node_id"],
                condition=Q(status__in=[*COMPLETED_STEP_STATUSES]),
                name="one_completion_per_node",
            ),
            models.UniqueConstraint(
                fields=["run", "node_id", "attempt"], name="one_row_per_attempt"
            ),
        ]
        indexes = [
            models.Index(
                fields=["wait_deadline"],
                name="step_wait_deadline",
                condition=Q(status=StepStatus.WAITING),
            ),
            models.Index(
                fields=["rollup_xid"],
                name="step_rollup_xid",
                condition=Q(rollup_xid__isnull=False),
            ),
            # Attempts waiting for their retry (few): /metrics counts them.
            models.Index(
                fields=["run"],
                name="step_retry_scheduled",
                condition=Q(status=StepStatus.RETRY_SCHEDULED),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.node_id}#{self.attempt} ({self.status})"


class AgentCallStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # asked for, not started (policy not decided yet)
    REVIEW = "review", "Waiting for review"
    APPROVED = "approved", "Approved"  # by a reviewer, not started yet
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    DENIED = "denied", "Denied"  # by the agent_tools policy, or by a reviewer


FINISHED_AGENT_CALL_STATUSES = (
    AgentCallStatus.SUCCEEDED,
    AgentCallStatus.FAILED,
    AgentCallStatus.DENIED,
)


class AgentCall(models.Model):
    """One tool call an ``ai.agent`` step's model asked for: the durable record that makes
    the call happen at most once. ``key`` is derived from (run, node, turn, call index); a
    re-executed or retried step replays its recorded turns from these rows instead of
    asking the model again, and reuses the output of every finished call. Written only by
    ``apps.runs.agent_calls``."""

    id = models.BigAutoField(primary_key=True)
    # Indexed by the (run, node_id, turn, index) constraint, which starts with it.
    run = models.ForeignKey(
        Run, on_delete=models.CASCADE, related_name="agent_calls", db_index=False
    )
    node_id = models.CharField(max_length=64)
    turn = models.PositiveSmallIntegerField()
    index = models.PositiveSmallIntegerField()
    key = models.CharField(max_length=64)  # the call's idempotency key
    call_id = models.CharField(max_length=100)  # the model's id for the call
    tool = models.CharField(max_length=64)
    kind = models.CharField(max_length=10)  # "block" or "flow"
    target = models.CharField(max_length=120)  # the block type or the flow's slug
    arguments = models.JSONField(default=dict)
    status = models.CharField(
        max_length=20, choices=AgentCallStatus.choices, default=AgentCallStatus.PENDING
    )
    output = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    # The agent_tools gate: {"action", "reasons", "policy", "version"}.
    decision = models.JSONField(null=True, blank=True)
    reviewer = models.CharField(max_length=150, blank=True)
    review_comment = models.TextField(blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    child_run_id = models.CharField(max_length=64, blank=True)
    # The model's answer of this turn (model, version, usage, latency): on every call of it.
    turn_meta = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["turn", "index"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "node_id", "turn", "index"], name="one_agent_call_per_position"
            )
        ]

    def __str__(self) -> str:
        return f"{self.tool} (turn {self.turn}.{self.index}, {self.status})"

    @property
    def duration_ms(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds() * 1000
        return None
