"""Resolve the workspace named in the URL and enforce the caller's role, for every view."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, cast

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django_htmx.middleware import HtmxDetails

from .models import Membership, User, Workspace
from .permissions import Capability, can
from .selectors import membership_get

View = Callable[..., HttpResponseBase]


class SignedInRequest(HttpRequest):
    """The request a view behind ``login_required`` receives: its user is signed in."""

    user: User
    htmx: HtmxDetails  # django-htmx's middleware sets it on every request


class WorkspaceRequest(SignedInRequest):
    """The request a view behind ``workspace_view`` receives: a signed-in member, their
    membership and its workspace. Annotate such views' ``request`` with it."""

    membership: Membership
    workspace: Workspace


def workspace_view(capability: Capability) -> Callable[[View], View]:
    """Require login, membership of ``workspace_slug`` (else 404) and ``capability``
    (else 403). Sets ``request.workspace`` and ``request.membership``."""

    def decorator(view: View) -> View:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, workspace_slug: str, *args: Any, **kwargs: Any):
            membership = membership_get(user=request.user, workspace_slug=workspace_slug)  # type: ignore[arg-type]
            # Set before the capability check so a 403 page still shows the app shell.
            member_request = cast(WorkspaceRequest, request)
            member_request.membership = membership
            member_request.workspace = membership.workspace
            if not can(membership, capability):
                raise PermissionDenied(f"Your role ({membership.role}) cannot do this.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
