"""Login, logout and the workspace settings page."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .decorators import workspace_view
from .forms import LoginForm
from .permissions import Capability, can
from .selectors import workspace_member_list


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    pass


@workspace_view(Capability.VIEW_FLOWS)
def workspace_settings(request: HttpRequest) -> HttpResponse:
    members = workspace_member_list(workspace=request.workspace)  # type: ignore[attr-defined]
    can_manage_settings = can(request.membership, Capability.MANAGE_SETTINGS)  # type: ignore[attr-defined]
    return render(
        request,
        "accounts/settings.html",
        {"members": members, "can_manage_settings": can_manage_settings},
    )
