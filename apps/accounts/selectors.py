"""Reads about users, workspaces and memberships."""

from __future__ import annotations

from uuid import UUID

from django.db.models import QuerySet
from django.http import Http404

from .models import ApiToken, Invitation, Membership, ReviewerGroup, Role, User, Workspace


def membership_list(*, user: User) -> QuerySet[Membership]:
    """Every workspace the user belongs to and may use (not archived), workspace loaded."""
    return Membership.objects.filter(user=user, workspace__archived_at__isnull=True).select_related(
        "workspace"
    )


def workspace_list_for(*, user: User) -> QuerySet[Membership]:
    """Every membership of ``user``, archived workspaces too (an admin restores them)."""
    return Membership.objects.filter(user=user).select_related("workspace")


def membership_get(*, user: User, workspace_slug: str) -> Membership:
    """The user's membership in the workspace. Raises Http404 when the workspace does not
    exist or the user is not a member: the two cases must look the same to the caller."""
    membership = (
        Membership.objects.filter(
            user=user, workspace__slug=workspace_slug, workspace__archived_at__isnull=True
        )
        .select_related("workspace")
        .first()
    )
    if membership is None:
        raise Http404("No such workspace.")
    return membership


def api_token_list(*, user: User, workspace_id: UUID | str) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user, workspace_id=workspace_id)


def workspace_token_list(*, workspace_id: UUID | str) -> QuerySet[ApiToken]:
    """Every token of every member of the workspace (what an admin oversees)."""
    return ApiToken.objects.filter(workspace_id=workspace_id).select_related("user")


def workspace_member_list(*, workspace: Workspace) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(workspace=workspace)
        .select_related("user")
        .order_by("user__username")
    )


def workspace_admin_contact(*, workspace: Workspace, action: str) -> dict[str, object]:
    """What a refused builder does next: ``action`` is what to ask an admin for; the answer
    names the workspace's admins and links to the members list (Settings)."""
    from django.urls import reverse

    admins = [
        str(membership.user)
        for membership in workspace_member_list(workspace=workspace).filter(role=Role.ADMIN)
    ]
    who = ", ".join(admins) if admins else "an admin of this workspace"
    return {
        "message": f"Ask {who} to {action}.",
        "admins": admins,
        "url": reverse("settings:index", kwargs={"workspace_slug": workspace.slug}) + "#members",
    }


def api_token_get(
    *, user: User, workspace_id: UUID | str, token_id: UUID | str, any_owner: bool = False
) -> ApiToken:
    """One of the user's own tokens for the workspace (with ``any_owner``, for admins, any
    member's); anything else is a 404."""
    tokens = (
        workspace_token_list(workspace_id=workspace_id)
        if any_owner
        else api_token_list(user=user, workspace_id=workspace_id)
    )
    token = tokens.filter(pk=token_id).first()
    if token is None:
        raise Http404("No such token.")
    return token


def member_get(*, workspace: Workspace, user_id: UUID | str | int) -> Membership:
    try:
        pk = int(str(user_id))
    except ValueError:
        raise Http404("No such member.") from None
    membership = workspace_member_list(workspace=workspace).filter(user_id=pk).first()
    if membership is None:
        raise Http404("No such member.")
    return membership


def invitation_pending_list(*, workspace: Workspace) -> QuerySet[Invitation]:
    return Invitation.objects.filter(
        workspace=workspace, accepted_at__isnull=True, revoked_at__isnull=True
    ).select_related("invited_by")


def invitation_get(*, workspace: Workspace, invitation_id: UUID | str) -> Invitation:
    invitation = Invitation.objects.filter(workspace=workspace, pk=invitation_id).first()
    if invitation is None:
        raise Http404("No such invitation.")
    return invitation


def admin_count(*, workspace: Workspace) -> int:
    return Membership.objects.filter(
        workspace=workspace, role=Role.ADMIN, user__is_active=True
    ).count()


def reviewer_group_list(*, workspace: Workspace) -> QuerySet[ReviewerGroup]:
    return ReviewerGroup.objects.filter(workspace=workspace).prefetch_related("members")
