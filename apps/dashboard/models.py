"""Per-workspace service-level objectives, and the rollups the dashboard and ``/metrics``
read their figures from."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class SloTargets(models.Model):
    """A workspace's SLO targets (Dashboard → SLO targets, admins only). Until an admin
    saves them the field defaults apply. Each target is judged against the figure of the
    same name over the dashboard's time range (``apps.dashboard.slo``)."""

    workspace = models.OneToOneField(
        "accounts.Workspace", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    run_success_percent = models.FloatField(
        default=95.0, validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    step_p95_ms = models.PositiveIntegerField(
        default=2000, validators=[MinValueValidator(1), MaxValueValidator(3_600_000)]
    )
    model_p95_ms = models.PositiveIntegerField(
        default=500, validators=[MinValueValidator(1), MaxValueValidator(600_000)]
    )
    policy_p95_ms = models.PositiveIntegerField(
        default=50, validators=[MinValueValidator(1), MaxValueValidator(60_000)]
    )
    inbox_oldest_hours = models.FloatField(
        default=24.0, validators=[MinValueValidator(0.1), MaxValueValidator(24 * 365)]
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"SLO targets of {self.workspace_id}"


class Rollup(models.Model):
    """What ended in one minute (``tier`` 1), hour (60), UTC day (1440) or ever (0,
    ``start`` the epoch) in a workspace, per ``kind`` and ``key``: runs per final status
    (``run``) and trigger (``trigger``), step attempts per block type (``step``), answered
    calls per model (``model``, ``ai``) and evaluations per policy (``policy``).

    Counts and sums add up across rows; latency is a histogram over fixed log-scale
    buckets (``apps.dashboard.rollups.bucket_upper_ms``), kept sparse as two arrays of the
    same length (bucket numbers ascending, and their counts), so that a quantile of any
    set of rows comes from their summed buckets. Rows are per workspace, not per flow: a
    range reads a few rows per minute, hour or day whatever the number of flows. Written
    only by ``rollups.materialise``.
    """

    class Tier(models.IntegerChoices):
        TOTAL = 0, "All time"
        MINUTE = 1, "Minute"
        HOUR = 60, "Hour"
        DAY = 1440, "Day"

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(
        "accounts.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    tier = models.PositiveSmallIntegerField(choices=Tier.choices)
    start = models.DateTimeField()
    kind = models.CharField(max_length=16)
    key = models.CharField(max_length=200, blank=True)
    count = models.BigIntegerField(default=0)
    failed = models.BigIntegerField(default=0)  # step attempts that failed
    retries = models.BigIntegerField(default=0)  # step attempts after the first
    total_ms = models.FloatField(default=0)
    cost = models.FloatField(default=0)
    tokens = models.FloatField(default=0)
    hist_buckets = ArrayField(models.SmallIntegerField(), default=list)
    hist_counts = ArrayField(models.BigIntegerField(), default=list)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "tier", "start", "kind", "key"], name="dashboard_rollup_key"
            )
        ]
        indexes = [models.Index(fields=["tier", "start"], name="dashboard_rollup_age")]

    def __str__(self) -> str:
        return f"{self.kind} {self.key} at {self.start} (tier {self.tier})"


class RollupMark(models.Model):
    """The materialiser's high-water mark: every run and step attempt that ended in a
    transaction older than ``xid`` is counted in the rollups (one row)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    xid = models.BigIntegerField(default=0)
    materialised_at = models.DateTimeField(null=True, blank=True)
    purged_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"rollups up to transaction {self.xid}"
