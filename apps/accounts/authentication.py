"""Bearer-token authentication for the REST API (``Authorization: Bearer fg_...``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from .models import ApiToken
from .services import token_digest


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):  # type: ignore[no-untyped-def]
        header = authentication.get_authorization_header(request).decode(errors="replace")
        if not header.startswith(f"{self.keyword} "):
            return None
        secret = header[len(self.keyword) + 1 :].strip()
        token = (
            ApiToken.objects.select_related("user", "workspace")
            .filter(digest=token_digest(secret))
            .first()
        )
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid API token.")
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed(
                f"This API token was revoked on {token.revoked_at:%Y-%m-%d %H:%M} UTC."
            )
        if token.expires_at is not None and token.expires_at <= timezone.now():
            raise exceptions.AuthenticationFailed(
                f"This API token expired on {token.expires_at:%Y-%m-%d %H:%M} UTC."
            )
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("This API token's owner is deactivated.")
        self._touch(token)
        return token.user, token

    def authenticate_header(self, request):  # type: ignore[no-untyped-def]
        return self.keyword

    @staticmethod
    def _touch(token: ApiToken) -> None:
        # One write a minute at most: a busy integration must not turn reads into writes.
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)


class TokenScopePermission(permissions.BasePermission):
    """A read-only API token may only read: any unsafe method is a 403, on every API view
    (a default permission class; ``WorkspaceAPIView`` checks it too, in case a view
    replaces the defaults)."""

    message = "This API token is read-only: it cannot change anything."

    def has_permission(self, request: Request, view: Any) -> bool:
        token = request.auth
        return not (
            isinstance(token, ApiToken)
            and token.read_only
            and request.method not in permissions.SAFE_METHODS
        )
