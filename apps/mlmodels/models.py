"""Promotion requests: one admin asks for a model version to move to an alias, another decides.

MLflow stays the source of truth for models, versions, aliases and the canary share; this
table only holds the four-eyes workflow around moving an alias (who asked, for what, who
decided, and what the ``model_promotion`` gate said). Written only by ``services.py``.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.core.models import WorkspaceOwned


class PromotionStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"  # the gate allowed it and the alias moved
    DENIED = "denied", "Denied by the gate"  # approved by a person, refused by the policy
    REJECTED = "rejected", "Rejected"  # refused by the second admin


class PromotionRequest(WorkspaceOwned):
    model_name = models.CharField(max_length=200)
    version = models.CharField(max_length=20)
    alias = models.CharField(max_length=20)
    # Only for the canary alias: the share of ``production`` calls the canary serves.
    canary_share = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    note = models.TextField(blank=True)
    status = models.CharField(
        max_length=20, choices=PromotionStatus.choices, default=PromotionStatus.PENDING
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    # The gate's reasons at approval (empty until then, and for a rejection).
    reasons = models.JSONField(default=list, blank=True)
    previous_version = models.CharField(max_length=20, blank=True)

    class Meta:
        ordering = ("-created_at",)
        indexes = [models.Index(fields=("workspace", "status", "model_name"))]

    def __str__(self) -> str:
        return f"{self.model_name} v{self.version} → {self.alias}"

    @property
    def is_pending(self) -> bool:
        return self.status == PromotionStatus.PENDING
