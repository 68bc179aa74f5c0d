"""Users, workspaces (tenants), memberships with a role, and API tokens."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models

from apps.core.models import PublicModel


class User(AbstractUser):
    """A person. What they may do depends on their role in each workspace."""

    display_name = models.CharField(max_length=150, blank=True)

    def __str__(self) -> str:
        return self.display_name or self.get_full_name() or self.username


class Workspace(PublicModel):
    """A tenant. Every domain object belongs to one; nothing crosses between them."""

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    # An archived workspace keeps its data but leaves every member's switcher and URLs
    # (404) until an admin restores it from the Workspaces page.
    archived_at = models.DateTimeField(null=True, blank=True)
    # When set, builders cannot publish or roll back flows themselves: they request it and
    # an admin approves the request from the inbox.
    publish_requires_approval = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    BUILDER = "builder", "Builder"
    REVIEWER = "reviewer", "Reviewer"
    ADMIN = "admin", "Admin"


class Membership(PublicModel):
    """A user's role in one workspace. A user may belong to several workspaces."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "workspace"], name="one_membership_per_user")
        ]
        ordering = ["workspace__name"]

    def __str__(self) -> str:
        return f"{self.user} is {self.role} in {self.workspace}"


class TokenScope(models.TextChoices):
    FULL = "full", "Full access (the owner's role)"
    READ = "read", "Read-only"


class Invitation(PublicModel):
    """An invitation to join a workspace with a role, sent to an email address.

    The link carries a signed value naming the invitation and its ``nonce``; resending
    draws a new nonce, so only the latest link works, and accepting or revoking ends it.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=20, choices=Role.choices)
    nonce = models.CharField(max_length=32)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)  # null: shown to copy, not mailed
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One pending invitation per address and workspace: inviting again resends.
            models.UniqueConstraint(
                fields=["workspace", "email"],
                condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="one_pending_invitation_per_email",
            )
        ]

    def __str__(self) -> str:
        return f"{self.email} as {self.role} in {self.workspace}"


class ReviewerGroup(PublicModel):
    """A named set of members (e.g. "Finance approvers") a ``human.approval`` step can
    assign its task to, besides a role or named users."""

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="reviewer_groups"
    )
    slug = models.SlugField(max_length=60)
    name = models.CharField(max_length=120)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "slug"], name="group_slug_per_workspace")
        ]

    def __str__(self) -> str:
        return self.name


class ApiToken(PublicModel):
    """A per-user bearer token for one workspace. Only a SHA-256 digest is stored; the
    token itself is shown once, when it is created. It acts with its owner's role, limited
    to reading (safe methods) when its scope is ``read``, until ``expires_at`` if set."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, db_index=True)
    digest = models.CharField(max_length=64, unique=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    scope = models.CharField(max_length=10, choices=TokenScope.choices, default=TokenScope.FULL)

    class Meta:
        ordering = ["-created_at"]

    @property
    def read_only(self) -> bool:
        return self.scope == TokenScope.READ

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
