"""Bearer-token authentication for the REST API (``Authorization: Bearer fg_...``)."""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from .models import ApiToken
from .services import TokenRejected, api_token_authenticate


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode(errors="replace")
        if not header.startswith(f"{self.keyword} "):
            return None
        try:
            token = api_token_authenticate(header[len(self.keyword) + 1 :].strip())
        except TokenRejected as rejected:
            raise exceptions.AuthenticationFailed(str(rejected)) from None
        return token.user, token

    def authenticate_header(self, request):
        return self.keyword


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
