"""Settings → Groups: reviewer groups a ``human.approval`` step can assign tasks to."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from . import groups, selectors
from .decorators import WorkspaceRequest, workspace_view
from .models import ReviewerGroup
from .permissions import Capability, can
from .team import TeamError


def _back(request: WorkspaceRequest) -> HttpResponse:
    return redirect("settings:groups", workspace_slug=request.workspace.slug)


@workspace_view(Capability.VIEW_FLOWS)
def group_list(request: WorkspaceRequest) -> HttpResponse:
    workspace = request.workspace
    if request.method == "POST":
        if not can(request.membership, Capability.MANAGE_SETTINGS):
            messages.error(request, "Only admins manage reviewer groups.")
            return _back(request)
        try:
            group = groups.reviewer_group_create(
                workspace=workspace, actor=request.user, name=request.POST.get("name", "")
            )
        except TeamError as error:
            messages.error(request, error.message[:1].upper() + error.message[1:] + ".")
        else:
            messages.success(request, f"Created {group.name}: assign tasks to “{group.slug}”.")
        return _back(request)
    context = {
        "groups": selectors.reviewer_group_list(workspace=workspace),
        "members": selectors.workspace_member_list(workspace=workspace),
        "can_manage": can(request.membership, Capability.MANAGE_SETTINGS),
    }
    return render(request, "accounts/groups.html", context)


def _group(request: WorkspaceRequest, group_id: str) -> ReviewerGroup:
    return get_object_or_404(ReviewerGroup, workspace=request.workspace, pk=group_id)


@workspace_view(Capability.MANAGE_SETTINGS)
@require_POST
def group_members(request: WorkspaceRequest, group_id: str) -> HttpResponse:
    group = _group(request, group_id)
    try:
        groups.reviewer_group_set_members(
            group=group, actor=request.user, usernames=request.POST.getlist("members")
        )
    except TeamError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Saved the members of {group.name}.")
    return _back(request)


@workspace_view(Capability.MANAGE_SETTINGS)
@require_POST
def group_delete(request: WorkspaceRequest, group_id: str) -> HttpResponse:
    group = _group(request, group_id)
    groups.reviewer_group_delete(group=group, actor=request.user)
    messages.success(request, f"Deleted {group.name}.")
    return _back(request)
