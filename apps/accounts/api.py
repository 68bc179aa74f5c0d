"""DRF building blocks that scope every API view to one workspace."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.views import APIView

from .models import ApiToken
from .permissions import Capability, can
from .selectors import membership_get


class WorkspaceAPIView(APIView):
    """Base for API views under ``/api/w/<workspace_slug>/``.

    Subclasses set ``capability``. A token issued for another workspace, or a user who is
    not a member, gets 404; a member without the capability gets 403.
    """

    capability: Capability = Capability.VIEW_FLOWS

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
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
