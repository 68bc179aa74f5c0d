"""Per-workspace service-level objectives shown on the dashboard and in ``/metrics``."""

from __future__ import annotations

from django.conf import settings
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
