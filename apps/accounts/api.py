"""DRF building blocks that scope every API view to one workspace."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .authentication import TokenScopePermission
from .models import ApiToken, TokenScope
from .permissions import Capability, can
from .selectors import api_token_get, api_token_list, membership_get, workspace_token_list
from .services import TokenError, api_token_create, api_token_revoke


class WorkspaceAPIView(APIView):
    """Base for API views under ``/api/w/<workspace_slug>/``.

    Subclasses set ``capability``. A token issued for another workspace, or a user who is
    not a member, gets 404; a member without the capability gets 403.
    """

    capability: Capability = Capability.VIEW_FLOWS

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if not TokenScopePermission().has_permission(request, self):
            self.permission_denied(request, message=TokenScopePermission.message)
        slug = kwargs["workspace_slug"]
        if isinstance(request.auth, ApiToken) and request.auth.workspace.slug != slug:
            raise Http404("No such workspace.")
        membership = membership_get(user=request.user, workspace_slug=slug)  # type: ignore[arg-type]
        if not can(membership, self.capability):
            self.permission_denied(
                request, message=f"Your role ({membership.role}) cannot do this."
            )
        request.membership = membership  # type: ignore[attr-defined]
        request.workspace = membership.workspace  # type: ignore[attr-defined]

    def has_capability(self, capability: Capability) -> bool:
        return can(getattr(self.request, "membership", None), capability)


class IsAuthenticated(permissions.IsAuthenticated):
    message = "Authentication required: log in or send 'Authorization: Bearer <token>'."


def token_data(token: ApiToken) -> dict[str, Any]:
    return {
        "id": str(token.id),
        "name": token.name,
        "prefix": token.prefix,
        "owner": token.user.username,
        "scope": token.scope,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "last_used_at": token.last_used_at,
        "revoked_at": token.revoked_at,
    }


class ApiTokenListApi(WorkspaceAPIView):
    """GET: the caller's tokens here (an admin's answer holds every member's). POST: issue
    a token for the caller; the answer holds its secret, shown this once."""

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        scope = serializers.ChoiceField(choices=TokenScope.choices, default=TokenScope.FULL)
        expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)

    def get(self, request: Request, workspace_slug: str) -> Response:
        tokens = (
            workspace_token_list(workspace_id=request.workspace.id)  # type: ignore[attr-defined]
            if self.has_capability(Capability.MANAGE_SETTINGS)
            else api_token_list(user=request.user, workspace_id=request.workspace.id)  # type: ignore[arg-type, attr-defined]
        )
        return Response([token_data(token) for token in tokens.select_related("user")])

    def post(self, request: Request, workspace_slug: str) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            issued = api_token_create(
                user=request.user,  # type: ignore[arg-type]
                workspace=request.workspace,  # type: ignore[attr-defined]
                **data.validated_data,
            )
        except TokenError as error:
            raise serializers.ValidationError({"expires_at": [str(error)]}) from None
        response = Response({**token_data(issued.token), "token": issued.secret}, status=201)
        response["Cache-Control"] = "no-store"
        return response


class ApiTokenDetailApi(WorkspaceAPIView):
    """DELETE: revoke a token: the caller's own, or (admins) any member's."""

    def delete(self, request: Request, workspace_slug: str, token_id: str) -> Response:
        token = api_token_get(
            user=request.user,  # type: ignore[arg-type]
            workspace_id=request.workspace.id,  # type: ignore[attr-defined]
            token_id=token_id,
            any_owner=self.has_capability(Capability.MANAGE_SETTINGS),
        )
        api_token_revoke(token=token, actor=request.user)  # type: ignore[arg-type]
        return Response(status=204)
