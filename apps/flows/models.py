"""Flows and their immutable published versions."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models

from apps.core.models import WorkspaceOwned


def _webhook_token() -> str:
    return secrets.token_urlsafe(24)


class FlowStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"
    ARCHIVED = "archived", "Archived"


class Flow(WorkspaceOwned):
    """An automation. Holds one editable draft; publishing freezes it into a FlowVersion.

    ``draft_revision`` increases on every save so two editors cannot silently overwrite each
    other (a save names the revision it started from). ``webhook_token`` is the secret in
    the flow's webhook URL; signed deliveries (``auth: hmac``) are checked with a secret of
    their own, ``webhook_signing_secret`` (a Standard Webhooks ``whsec_`` key, encrypted at
    rest like connection secrets, shown once when an admin generates or rotates it).
    """

    slug = models.SlugField(max_length=80)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=FlowStatus.choices, default=FlowStatus.DRAFT)
    draft_definition = models.JSONField(default=dict)
    draft_revision = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    webhook_token = models.CharField(max_length=64, default=_webhook_token, unique=True)
    webhook_signing_secret = models.TextField(blank=True, default="")
    webhook_secret_rotated_at = models.DateTimeField(null=True, blank=True)
    latest_version = models.ForeignKey(
        "FlowVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "slug"], name="flow_slug_per_workspace")
        ]

    def __str__(self) -> str:
        return self.name


class FlowVersion(models.Model):
    """A published, immutable flow definition. Runs pin the version they started on."""

    id = models.BigAutoField(primary_key=True)
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    definition = models.JSONField()
    digest = models.CharField(max_length=64)
    note = models.CharField(max_length=500, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    published_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["flow", "number"], name="flow_version_number_unique")
        ]

    def __str__(self) -> str:
        return f"{self.flow} v{self.number}"


class TriggerSubscription(models.Model):
    """How a published flow is started, so listeners need not parse flows: written when a
    flow is published, archived or restored (one row per active flow whose trigger has an
    activation; ``subscriptions.py``). The webhook view finds its flow by ``("webhook",
    token)``, the scheduler reads the ``schedule`` rows, the stream consumer the ``stream``
    rows. ``settings`` is the trigger's activation settings (mode, cron, stream…)."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="+")
    flow = models.OneToOneField(Flow, on_delete=models.CASCADE, related_name="subscription")
    version = models.ForeignKey(FlowVersion, on_delete=models.CASCADE, related_name="+")
    block = models.CharField(max_length=80)  # the trigger block's key
    kind = models.CharField(max_length=40)
    key = models.CharField(max_length=200)
    settings = models.JSONField(default=dict)
    # When the row was last written: a schedule does not fire for minutes before it.
    activated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["kind", "key"], name="subscription_kind_key")]

    def __str__(self) -> str:
        return f"{self.kind}:{self.key} → {self.flow_id}"


class PublishRequestStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class PublishRequest(WorkspaceOwned):
    """A builder's request that an admin publish (or roll back) a flow, in a workspace that
    requires approval. ``definition`` is what was asked for, frozen at request time, so the
    admin approves exactly what they reviewed; ``gate`` is the publish gate's answer for the
    requester then."""

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="publish_requests")
    rollback_to = models.PositiveIntegerField(null=True, blank=True)  # None: the draft
    definition = models.JSONField()
    note = models.CharField(max_length=500, blank=True)
    gate = models.JSONField(default=dict)
    status = models.CharField(
        max_length=20, choices=PublishRequestStatus.choices, default=PublishRequestStatus.PENDING
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True)
    version = models.ForeignKey(
        FlowVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["flow"],
                condition=models.Q(status="pending"),
                name="one_pending_publish_request_per_flow",
            )
        ]

    def __str__(self) -> str:
        return f"publish request for {self.flow} ({self.status})"
