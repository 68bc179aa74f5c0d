"""Team administration pages: members, invitations, the workspace itself, and accepting an
invitation. Views are thin: they parse the form, call ``team``/``invitations`` services
and show the result; a refused action is a message on the page, never a 500."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from . import invitations, selectors, team
from .decorators import SignedInRequest, WorkspaceRequest, workspace_view
from .forms import ROLE_CHOICES, AcceptInvitationForm, InvitationForm, WorkspaceForm
from .permissions import Capability, can

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _members_context(request: WorkspaceRequest, **extra: Any) -> dict[str, Any]:
    workspace = request.workspace
    return {
        "members": selectors.workspace_member_list(workspace=workspace),
        "pending": selectors.invitation_pending_list(workspace=workspace),
        "can_manage": can(request.membership, Capability.MANAGE_SETTINGS),
        "roles": ROLE_CHOICES,
        "form": InvitationForm(),
        "now": timezone.now(),
        **extra,
    }


@workspace_view(Capability.VIEW_FLOWS)
def members(request: WorkspaceRequest) -> HttpResponse:
    return render(request, "accounts/members.html", _members_context(request))


@workspace_view(Capability.MANAGE_SETTINGS)
@require_POST
def invite(request: WorkspaceRequest) -> HttpResponse:
    form = InvitationForm(request.POST)
    if not form.is_valid():
        return render(
            request, "accounts/members.html", _members_context(request, form=form), status=400
        )
    try:
        sent = invitations.invitation_create(
            workspace=request.workspace,
            actor=request.user,
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
        )
    except team.TeamError as error:
        form.add_error("email", error.message)
        return render(
            request,
            "accounts/members.html",
            _members_context(request, form=form),
            status=error.status,
        )
    response = render(request, "accounts/members.html", _members_context(request, sent=sent))
    response["Cache-Control"] = "no-store"  # the page may hold the link
    return response


def _member_row(
    request: WorkspaceRequest, user_id: Any, *, error: str = "", status: int = 200
) -> HttpResponse:
    membership = selectors.member_get(workspace=request.workspace, user_id=user_id)
    context = {**_members_context(request), "m": membership, "row_error": error}
    return render(request, "accounts/partials/member_row.html", context, status=status)


def _after_change(
    request: WorkspaceRequest, user_id: Any, done: str, error: team.TeamError | None
) -> HttpResponse:
    """htmx swaps the member's row (with the message in it); a plain form reloads the page."""
    if _is_htmx(request):
        if error is not None:
            return _member_row(request, user_id, error=error.message, status=422)
        return _member_row(request, user_id)
    if error is not None:
        messages.error(request, error.message[:1].upper() + error.message[1:] + ".")
    else:
        messages.success(request, done)
    return redirect("settings:members", workspace_slug=request.workspace.slug)


@workspace_view(Capability.MANAGE_SETTINGS)
@require_POST
def member_role(request: WorkspaceRequest, user_id: int) -> HttpResponse:
    error = None
    try:
        team.membership_change_role(
            workspace=request.workspace,
            actor=request.user,
            user_id=user_id,
            role=request.POST.get("role", ""),
            expected_role=request.POST.get("expected_role", ""),
        )
    except team.TeamError as refused:
        error = refused
    return _after_change(request, user_id, "Role changed.", error)


@workspace_view(Capability.MANAGE_SETTINGS)
@require_POST
def member_active(request: WorkspaceRequest, user_id: int) -> HttpResponse:
    active = request.POST.get("active") == "1"
    error = None
    try:
        team.user_set_active(
            workspace=request.workspace,
            actor=request.user,
            user_id=user_id,
            active=active,
        )
    except team.TeamError as refused:
        error = refused
    done = (
        "Account reactivated."
        if active
        else "Account deactivated: their sessions and API tokens have ended."
    )
    return _after_change(request, user_id, done, error)


@workspace_view(Capability.MANAGE_SETTINGS)
@require_POST
def member_remove(request: WorkspaceRequest, user_id: int) -> HttpResponse:
    try:
        team.membership_remove(workspace=request.workspace, actor=request.user, user_id=user_id)
    except team.TeamError as error:
        messages.error(request, error.message[:1].upper() + error.message[1:] + ".")
    else:
        messages.success(
            request, "Member removed; their API tokens for this workspace are revoked."
        )
        if request.user.pk == user_id:  # they left: this workspace is no longer theirs
            return redirect("shell:home")
    return redirect("settings:members", workspace_slug=request.workspace.slug)


@workspace_view(Capability.MANAGE_SETTINGS)
@require_POST
def invitation_action(request: WorkspaceRequest, invitation_id: str, action: str) -> HttpResponse:
    invitation = selectors.invitation_get(workspace=request.workspace, invitation_id=invitation_id)
    if action == "revoke":
        invitations.invitation_revoke(invitation=invitation, actor=request.user)
        messages.success(
            request, f"Invitation for {invitation.email} revoked: its link no longer works."
        )
        return redirect("settings:members", workspace_slug=request.workspace.slug)
    try:
        sent = invitations.invitation_resend(invitation=invitation, actor=request.user)
    except team.TeamError as error:
        messages.error(request, error.message)
        return redirect("settings:members", workspace_slug=request.workspace.slug)
    response = render(request, "accounts/members.html", _members_context(request, sent=sent))
    response["Cache-Control"] = "no-store"
    return response


@workspace_view(Capability.MANAGE_SETTINGS)
def workspace_edit(request: WorkspaceRequest) -> HttpResponse:
    """Rename or archive the workspace."""
    workspace = request.workspace
    if request.method == "POST" and "publish_rule" in request.POST:
        required = request.POST.get("publish_requires_approval") == "on"
        team.workspace_set_publish_approval(
            workspace=workspace, actor=request.user, required=required
        )
        messages.success(request, "Publishing rule saved.")
        return redirect("settings:workspace", workspace_slug=workspace.slug)
    if request.method == "POST" and request.POST.get("archive"):
        team.workspace_archive(workspace=workspace, actor=request.user)
        messages.success(request, f"Archived {workspace.name}. Restore it from Workspaces.")
        return redirect("accounts:workspaces")
    form = WorkspaceForm(
        request.POST or None, initial={"name": workspace.name, "slug": workspace.slug}
    )
    if request.method == "POST" and form.is_valid():
        try:
            team.workspace_rename(
                workspace=workspace, actor=request.user, name=form.cleaned_data["name"]
            )
        except team.TeamError as error:
            form.add_error("name", error.message)
        else:
            messages.success(request, "Workspace renamed.")
            return redirect("settings:workspace", workspace_slug=workspace.slug)
    status = 400 if request.method == "POST" else 200
    return render(request, "accounts/workspace_edit.html", {"form": form}, status=status)


@login_required
def workspaces(request: SignedInRequest) -> HttpResponse:
    """Every workspace of the user, archived ones too; create a new one (becoming its admin)."""
    form = WorkspaceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            created = team.workspace_open(
                name=form.cleaned_data["name"],
                slug=form.cleaned_data["slug"],
                actor=request.user,
            )
        except team.TeamError as error:
            form.add_error("slug" if error.code == "exists" else "name", error.message)
        else:
            messages.success(
                request, f"Created {created.name}. You are its admin: invite your team."
            )
            return redirect("settings:members", workspace_slug=created.slug)
    status = 400 if request.method == "POST" else 200
    rows = selectors.workspace_list_for(user=request.user)
    return render(request, "accounts/workspaces.html", {"form": form, "rows": rows}, status=status)


@login_required
@require_POST
def workspace_restore(request: SignedInRequest, workspace_slug: str) -> HttpResponse:
    mine = selectors.workspace_list_for(user=request.user)
    row = mine.filter(workspace__slug=workspace_slug).first()
    if row is None or not can(row, Capability.MANAGE_SETTINGS):
        messages.error(request, "Only an admin of that workspace can restore it.")
        return redirect("accounts:workspaces")
    team.workspace_archive(workspace=row.workspace, actor=request.user, archived=False)
    messages.success(request, f"Restored {row.workspace.name}.")
    return redirect("accounts:workspaces")


def accept_invitation(request: HttpRequest, token: str) -> HttpResponse:
    """The page an invitation link opens. A bad link explains itself and creates nothing."""
    try:
        invitation = invitations.invitation_from_token(token)
    except invitations.InvitationInvalid as invalid:
        return render(
            request, "accounts/invitation_invalid.html", {"reason": str(invalid)}, status=410
        )
    user = request.user if request.user.is_authenticated else None
    existing = invitations.account_for(invitation)
    form = AcceptInvitationForm(request.POST or None)
    context = {"invitation": invitation, "existing": existing, "form": form, "token": token}
    if request.method != "POST":
        return render(request, "accounts/invitation_accept.html", context)
    if user is None and existing is None and not form.is_valid():
        return render(request, "accounts/invitation_accept.html", context, status=400)
    try:
        membership = invitations.invitation_accept(
            token=token,
            user=user,
            username=form.data.get("username", ""),
            password=form.data.get("password", ""),
            display_name=form.data.get("display_name", ""),
        )
    except invitations.InvitationInvalid as invalid:
        return render(
            request, "accounts/invitation_invalid.html", {"reason": str(invalid)}, status=410
        )
    except team.TeamError as error:
        context["error"] = error.message
        return render(request, "accounts/invitation_accept.html", context, status=error.status)
    if user is None:
        login(request, membership.user, backend=MODEL_BACKEND)
    messages.success(request, f"Welcome to {membership.workspace.name}.")
    return redirect("shell:workspace_home", workspace_slug=membership.workspace.slug)
