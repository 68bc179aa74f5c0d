"""Reads about users, workspaces and memberships."""

from __future__ import annotations

from uuid import UUID

from django.db.models import QuerySet
from django.http import Http404

from .models import ApiToken, Membership, Role, User, Workspace


def membership_list(*, user: User) -> QuerySet[Membership]:
    """Every workspace the user belongs to, with the workspace loaded."""
    return Membership.objects.filter(user=user).select_related("workspace")


def membership_get(*, user: User, workspace_slug: str) -> Membership:
    """The user's membership in the workspace. Raises Http404 when the workspace does not
    exist or the user is not a member: the two cases must look the same to the caller."""
    membership = (
        Membership.objects.filter(user=user, workspace__slug=workspace_slug)
        .select_related("workspace")
        .first()
    )
    if membership is None:
        raise Http404("No such workspace.")
    return membership


def api_token_list(*, user: User, workspace_id: UUID | str) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user, workspace_id=workspace_id)


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


def api_token_get(*, user: User, workspace_id: UUID | str, token_id: UUID | str) -> ApiToken:
    """One of the user's own tokens for the workspace; anyone else's is a 404."""
    token = api_token_list(user=user, workspace_id=workspace_id).filter(pk=token_id).first()
    if token is None:
        raise Http404("No such token.")
    return token
