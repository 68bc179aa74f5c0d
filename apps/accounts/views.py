"""Login, logout and the workspace settings page."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from . import services
from .decorators import WorkspaceRequest, workspace_view
from .forms import ApiTokenCreateForm, LoginForm
from .permissions import Capability, can
from .selectors import (
    api_token_get,
    api_token_list,
    workspace_member_list,
    workspace_token_list,
)


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not settings.LOCAL_PASSWORDS:  # single sign-on only
            messages.error(request, "Log-in with a password is switched off: use single sign-on.")
            return redirect("accounts:login")
        return super().post(request, *args, **kwargs)

    def get_context_data(self, **kwargs: object) -> dict[str, object]:
        return {
            **super().get_context_data(**kwargs),
            "sso": settings.OIDC_ENABLED,
            "sso_name": settings.OIDC_PROVIDER_NAME,
            "local_passwords": settings.LOCAL_PASSWORDS,
        }


class LogoutView(auth_views.LogoutView):
    pass


@workspace_view(Capability.VIEW_FLOWS)
def workspace_settings(request: WorkspaceRequest) -> HttpResponse:
    members = workspace_member_list(workspace=request.workspace)
    can_manage_settings = can(request.membership, Capability.MANAGE_SETTINGS)
    return render(
        request,
        "accounts/settings.html",
        {"members": members, "can_manage_settings": can_manage_settings},
    )


def _tokens_page(
    request: WorkspaceRequest, form: ApiTokenCreateForm, **extra: object
) -> HttpResponse:
    workspace_id = request.workspace.id
    tokens = api_token_list(user=request.user, workspace_id=workspace_id)
    is_admin = can(request.membership, Capability.MANAGE_SETTINGS)
    everyone = workspace_token_list(workspace_id=workspace_id) if is_admin else None
    context = {"tokens": tokens, "workspace_tokens": everyone, "form": form, "now": timezone.now()}
    return render(request, "accounts/tokens.html", {**context, **extra})


@workspace_view(Capability.VIEW_FLOWS)
def api_tokens(request: WorkspaceRequest) -> HttpResponse:
    """The user's own API tokens for this workspace (and, for admins, every member's).
    Creating one shows its secret in this response only; it is never stored and cannot be
    shown again."""
    if request.method != "POST":
        return _tokens_page(request, ApiTokenCreateForm())
    form = ApiTokenCreateForm(request.POST)
    if not form.is_valid():
        response = _tokens_page(request, form)
        response.status_code = 400
        return response
    issued = services.api_token_create(
        user=request.user,
        workspace=request.workspace,
        name=form.cleaned_data["name"],
        scope=form.cleaned_data["scope"],
        expires_at=form.expires_at(),
    )
    response = _tokens_page(request, ApiTokenCreateForm(), issued=issued)
    response["Cache-Control"] = "no-store"  # the page holds a secret
    return response


@workspace_view(Capability.VIEW_FLOWS)
@require_POST
def api_token_revoke(request: WorkspaceRequest, token_id: str) -> HttpResponse:
    token = api_token_get(
        user=request.user,
        workspace_id=request.workspace.id,
        token_id=token_id,
        any_owner=can(request.membership, Capability.MANAGE_SETTINGS),
    )
    services.api_token_revoke(token=token, actor=request.user)
    messages.success(
        request, f"Revoked “{token.name}” of {token.user}. Requests with it now get 401."
    )
    return redirect("settings:tokens", workspace_slug=request.workspace.slug)
