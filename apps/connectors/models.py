"""Connections: named, workspace-owned credentials that connector blocks refer to."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.models import WorkspaceOwned


class Connection(WorkspaceOwned):
    """A named connection to an outside system (SMTP, Postgres, Redis, an HTTP API).

    ``config`` holds the non-secret settings, validated by the type's ``Config``;
    ``secrets_encrypted`` holds the secret fields as one Fernet token (see ``crypto.py``),
    never plaintext. Blocks name a connection by ``name``, unique in its workspace.
    """

    name = models.SlugField(max_length=80)
    type = models.CharField(max_length=40)
    description = models.CharField(max_length=300, blank=True)
    config = models.JSONField(default=dict, blank=True)
    secrets_encrypted = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)
    last_tested_at = models.DateTimeField(null=True, blank=True)
    last_test_ok = models.BooleanField(null=True, blank=True)
    last_test_message = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ("name",)
        constraints = [
            models.UniqueConstraint(fields=("workspace", "name"), name="connection_name_unique")
        ]

    def __str__(self) -> str:
        return self.name


class EgressSettings(models.Model):
    """A workspace's egress allow-list (Settings → Egress): host names and networks its
    flows and connections may reach although they are private or special-purpose (an API
    in the office network). Added to the environment's ``SSRF_ALLOWLIST``; cloud metadata
    addresses stay refused whatever is listed."""

    workspace = models.OneToOneField(
        "accounts.Workspace", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    allowlist = models.JSONField(default=list)  # lower-case host names and CIDR networks
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"egress settings of {self.workspace_id}"
