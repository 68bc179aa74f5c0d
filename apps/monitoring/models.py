"""Model monitoring data: sampled predictions (with labels once they arrive), drift
results per window, and alerts with their deliveries.

MLflow stays the source of truth for models and versions; these tables hold what was
observed in production. Written only by ``services.py`` / ``sampling.py``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.models import WorkspaceOwned


class ModelMonitor(WorkspaceOwned):
    """Per model settings: how often to sample, the window drift and accuracy are judged
    over, and the thresholds. A model without a row uses the defaults below."""

    model_name = models.CharField(max_length=200)
    sample_rate = models.FloatField(default=1.0)  # 0..1 of model.predict steps sampled
    window_minutes = models.PositiveIntegerField(default=60)
    # Drift: a feature drifts when its test's p-value is below this (KS, chi-square).
    drift_p_value = models.FloatField(default=0.01)
    min_window_samples = models.PositiveIntegerField(default=30)
    # Alert when the labelled accuracy of a version in a window falls below this.
    accuracy_min = models.FloatField(default=0.7)
    # Connection names (smtp, webhook) alerts go to, plus email recipients.
    alert_connections = models.JSONField(default=list, blank=True)
    alert_recipients = models.JSONField(default=list, blank=True)
    # A reviewer's decision on a case the model scored, as a label: {"approved": "legit"}.
    review_labels = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=("workspace", "model_name"), name="one_monitor_per_model"
            )
        ]


class PredictionSample(models.Model):
    """One ``model.predict`` answer (every step: labels join any of them). On a sampled
    step (``sampled``) ``inputs`` holds each signature field, with fields the workspace
    classifies as PII masked before the row is written; otherwise it is empty. ``actual``
    is the ground-truth label once someone posts it (or a reviewer decides the case)."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="+")
    model_name = models.CharField(max_length=200)
    version = models.CharField(max_length=20)
    alias = models.CharField(max_length=20, blank=True)
    run_id = models.UUIDField()
    node_id = models.CharField(max_length=64)
    business_key = models.CharField(max_length=200, blank=True)  # keyed hash, never raw
    sampled = models.BooleanField(default=True)  # drawn by the sample rate: inputs stored
    inputs = models.JSONField(default=dict)
    label = models.CharField(max_length=200)
    score = models.FloatField()
    latency_ms = models.FloatField(null=True)
    shadow_label = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()
    # The version refused the call (no label, no score): counted in its error rate only.
    failed = models.BooleanField(default=False)
    actual = models.CharField(max_length=200, blank=True)
    label_source = models.CharField(max_length=20, blank=True)  # api, webhook, review
    labelled_at = models.DateTimeField(null=True)

    class Meta:
        indexes = [
            models.Index(fields=("workspace", "model_name", "created_at"), name="sample_window"),
            models.Index(fields=("run_id", "node_id"), name="sample_step"),
            # Partial: most steps name no business key, and their INSERT skips this index.
            models.Index(
                fields=("workspace", "business_key"),
                name="sample_business_key",
                condition=~models.Q(business_key=""),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model_name} v{self.version}: {self.label} ({self.score:.2f})"


class DriftResult(models.Model):
    """One feature's (or the prediction's) drift test for one version and window."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="+")
    model_name = models.CharField(max_length=200)
    version = models.CharField(max_length=20)
    window_end = models.DateTimeField()
    feature = models.CharField(max_length=200)  # a signature field, or prediction.score/label
    method = models.CharField(max_length=40)  # ks, chi_square
    statistic = models.FloatField()
    p_value = models.FloatField()
    js_distance = models.FloatField(null=True)  # Jensen-Shannon, shown beside the test
    drifted = models.BooleanField()
    samples = models.PositiveIntegerField()

    class Meta:
        ordering = ("window_end", "feature")
        indexes = [models.Index(fields=("workspace", "model_name", "window_end"))]

    def __str__(self) -> str:
        return f"{self.model_name} v{self.version} {self.feature}: p={self.p_value:.3g}"


class AlertState(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"


class MonitoringAlert(WorkspaceOwned):
    """An alert: at most one open per ``key`` (kind + subject), so a condition that stays
    true is delivered once; when it clears the alert resolves and a recovery is sent."""

    key = models.CharField(max_length=300)
    kind = models.CharField(max_length=40)  # slo_breach, drift, accuracy_drop, canary_rollback
    summary = models.CharField(max_length=500)
    details = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=20, choices=AlertState.choices, default=AlertState.OPEN)
    resolved_at = models.DateTimeField(null=True, blank=True)
    deliveries = models.JSONField(default=list, blank=True)  # [{channel, ok, message, at}]
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(
                fields=("workspace", "key"),
                condition=models.Q(state="open"),
                name="one_open_alert_per_key",
            )
        ]


__all__ = ["AlertState", "DriftResult", "ModelMonitor", "MonitoringAlert", "PredictionSample"]
