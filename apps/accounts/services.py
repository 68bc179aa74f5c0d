"""Writes for users, workspaces, memberships and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from .models import ApiToken, Membership, Role, TokenScope, User, Workspace

TOKEN_PREFIX = "fg_"  # noqa: S105 (a public marker, not a secret)


def workspace_create(*, slug: str, name: str) -> Workspace:
    return Workspace.objects.create(slug=slug, name=name)


def membership_set(*, user: User, workspace: Workspace, role: Role | str) -> Membership:
    """Give ``user`` the ``role`` in ``workspace``, replacing any role they had there."""
    membership, _ = Membership.objects.update_or_create(
        user=user, workspace=workspace, defaults={"role": Role(role)}
    )
    return membership


def user_create(*, username: str, password: str, email: str = "", display_name: str = "") -> User:
    return User.objects.create_user(
        username=username, password=password, email=email, display_name=display_name
    )


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown to the user once, never stored


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenRejected(Exception):
    """A bearer token that authenticates nobody; ``str()`` says why (unknown, revoked,
    expired, owner deactivated)."""


def api_token_authenticate(secret: str) -> ApiToken:
    """The live token whose secret is ``secret`` (with its user and workspace loaded), for
    every bearer-token entry point (the REST API, the MCP endpoint). Raises TokenRejected.
    Records its use at most once a minute: a busy integration must not turn reads into
    writes."""
    token = (
        ApiToken.objects.select_related("user", "workspace")
        .filter(digest=token_digest(secret))
        .first()
    )
    if token is None:
        raise TokenRejected("Invalid API token.")
    if token.revoked_at is not None:
        raise TokenRejected(f"This API token was revoked on {token.revoked_at:%Y-%m-%d %H:%M} UTC.")
    now = timezone.now()
    if token.expires_at is not None and token.expires_at <= now:
        raise TokenRejected(f"This API token expired on {token.expires_at:%Y-%m-%d %H:%M} UTC.")
    if not token.user.is_active:
        raise TokenRejected("This API token's owner is deactivated.")
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


class TokenError(Exception):
    """A token cannot be issued as asked; ``str()`` says why."""


@transaction.atomic
def api_token_create(
    *,
    user: User,
    workspace: Workspace,
    name: str,
    scope: TokenScope | str = TokenScope.FULL,
    expires_at: datetime | None = None,
) -> IssuedToken:
    """Issue a token; its secret is in the result only, never stored or logged."""
    from apps.audit.services import audit_record

    if scope not in TokenScope.values:
        raise TokenError(f"scope must be one of {', '.join(TokenScope.values)}")
    if expires_at is not None and expires_at <= timezone.now():
        raise TokenError("the expiry must be in the future")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        workspace=workspace,
        name=name,
        prefix=secret[:10],
        digest=token_digest(secret),
        scope=scope,
        expires_at=expires_at,
    )
    until = f", expires {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else ""
    audit_record(
        workspace_id=workspace.id,
        action="api_token.created",
        actor=user,
        object_type="api_token",
        object_id=token.id,
        summary=f"created API token {name!r} ({token.prefix}…, {token.scope}{until})",
    )
    return IssuedToken(token=token, secret=secret)


@transaction.atomic
def api_token_revoke(*, token: ApiToken, actor: User | None = None) -> None:
    from apps.audit.services import audit_record

    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(
            workspace_id=token.workspace_id,
            action="api_token.revoked",
            actor=actor or token.user,
            object_type="api_token",
            object_id=token.id,
            summary=f"revoked API token {token.name!r} ({token.prefix}…) of {token.user}",
        )
