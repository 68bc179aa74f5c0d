"""REST API for team administration: workspaces, members and invitations.

``/api/workspaces/`` lists the caller's workspaces and creates one (the caller becomes its
admin); ``/api/workspaces/<slug>/`` renames, archives or restores it (admins). Members and
invitations live under ``/api/w/<slug>/`` and need the admin role to change.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from . import invitations, selectors, team
from .api import WorkspaceAPIView
from .models import Invitation, Membership, Role
from .permissions import Capability, can


def team_error(error: team.TeamError) -> Response:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if isinstance(error.current, Membership):
        body["current"] = member_data(error.current)
    return Response({"error": body}, status=error.status)


def workspace_data(membership: Membership) -> dict[str, Any]:
    workspace = membership.workspace
    return {
        "slug": workspace.slug,
        "name": workspace.name,
        "archived": workspace.archived_at is not None,
        "role": membership.role,
    }


def member_data(membership: Membership) -> dict[str, Any]:
    user = membership.user
    return {
        "username": user.username,
        "name": str(user),
        "email": user.email,
        "role": membership.role,
        "active": user.is_active,
    }


def invitation_data(invitation: Invitation, link: str = "", emailed: bool | None = None) -> dict:
    data: dict[str, Any] = {
        "id": str(invitation.id),
        "email": invitation.email,
        "role": invitation.role,
        "expires_at": invitation.expires_at,
        "sent_at": invitation.sent_at,
    }
    if link:  # only in the answer to the admin who made or resent it
        data.update(link=link, emailed=emailed)
    return data


class WorkspaceCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    slug = serializers.SlugField(max_length=60, required=False, default="")


class WorkspaceChangeSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120, required=False)
    archived = serializers.BooleanField(required=False)


class WorkspaceListApi(APIView):
    """The caller's workspaces (archived ones too); POST creates one."""

    request_serializer = WorkspaceCreateSerializer

    def get(self, request):
        rows = selectors.workspace_list_for(user=request.user)
        return Response({"results": [workspace_data(row) for row in rows]})

    def post(self, request):
        body = WorkspaceCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            workspace = team.workspace_open(actor=request.user, **body.validated_data)
        except team.TeamError as error:
            return team_error(error)
        membership = Membership.objects.get(workspace=workspace, user=request.user)
        return Response(workspace_data(membership), status=201)


class WorkspaceDetailApi(APIView):
    """Rename (``name``), archive or restore (``archived``) a workspace you administer."""

    request_serializer = WorkspaceChangeSerializer

    def patch(self, request, slug):
        row = selectors.workspace_list_for(user=request.user).filter(workspace__slug=slug).first()
        if row is None:
            raise Http404("No such workspace.")
        if not can(row, Capability.MANAGE_SETTINGS):
            self.permission_denied(request, message=f"Your role ({row.role}) cannot do this.")
        body = WorkspaceChangeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            if "name" in body.validated_data:
                team.workspace_rename(
                    workspace=row.workspace, actor=request.user, name=body.validated_data["name"]
                )
            if "archived" in body.validated_data:
                team.workspace_archive(
                    workspace=row.workspace,
                    actor=request.user,
                    archived=body.validated_data["archived"],
                )
        except team.TeamError as error:
            return team_error(error)
        return Response(workspace_data(row))


class MemberListApi(WorkspaceAPIView):
    capability = Capability.VIEW_FLOWS

    def get(self, request, workspace_slug):
        members = selectors.workspace_member_list(workspace=request.workspace)
        return Response({"results": [member_data(m) for m in members]})


class MemberChangeSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices, required=False)
    # The role the admin saw (any text: a mismatch is a 409 with the current state).
    expected_role = serializers.CharField(
        max_length=20, required=False, allow_blank=True, default=""
    )
    active = serializers.BooleanField(required=False)


def _member(request: Any, username: str) -> Membership:
    membership = (
        selectors.workspace_member_list(workspace=request.workspace)
        .filter(user__username=username)
        .first()
    )
    if membership is None:
        raise Http404("No such member.")
    return membership


class MemberDetailApi(WorkspaceAPIView):
    """PATCH ``role`` (with the ``expected_role`` you saw: 409 and the current state when
    another admin changed it) or ``active``; DELETE removes the member. 409 ``last_admin``
    when the change would leave the workspace without an admin."""

    capability = Capability.MANAGE_SETTINGS
    request_serializer = {"PATCH": MemberChangeSerializer}

    def patch(self, request, workspace_slug, username):
        user_id = _member(request, username).user_id
        body = MemberChangeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        change = body.validated_data
        try:
            if "role" in change:
                team.membership_change_role(
                    workspace=request.workspace,
                    actor=request.user,
                    user_id=user_id,
                    role=change["role"],
                    expected_role=change["expected_role"],
                )
            if "active" in change:
                team.user_set_active(
                    workspace=request.workspace,
                    actor=request.user,
                    user_id=user_id,
                    active=change["active"],
                )
        except team.TeamError as error:
            return team_error(error)
        return Response(
            member_data(selectors.member_get(workspace=request.workspace, user_id=user_id))
        )

    def delete(self, request, workspace_slug, username):
        user_id = _member(request, username).user_id
        try:
            team.membership_remove(workspace=request.workspace, actor=request.user, user_id=user_id)
        except team.TeamError as error:
            return team_error(error)
        return Response(status=204)


class InvitationCreateSerializer(serializers.Serializer):
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Role.choices, default=Role.BUILDER)


class InvitationListApi(WorkspaceAPIView):
    """Pending invitations; POST invites (409 ``exists`` for a current member). The answer
    holds the link and whether it was emailed: pass it on yourself when it was not."""

    capability = Capability.MANAGE_SETTINGS
    request_serializer = {"POST": InvitationCreateSerializer}

    def get(self, request, workspace_slug):
        pending = selectors.invitation_pending_list(workspace=request.workspace)
        return Response({"results": [invitation_data(i) for i in pending]})

    def post(self, request, workspace_slug):
        body = InvitationCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            sent = invitations.invitation_create(
                workspace=request.workspace, actor=request.user, **body.validated_data
            )
        except team.TeamError as error:
            return team_error(error)
        return Response(invitation_data(sent.invitation, sent.link, sent.emailed), status=201)


class InvitationDetailApi(WorkspaceAPIView):
    """POST resends (a new link; the old one stops working); DELETE revokes."""

    capability = Capability.MANAGE_SETTINGS

    def post(self, request, workspace_slug, invitation_id):
        invitation = selectors.invitation_get(
            workspace=request.workspace, invitation_id=invitation_id
        )
        try:
            sent = invitations.invitation_resend(invitation=invitation, actor=request.user)
        except team.TeamError as error:
            return team_error(error)
        return Response(invitation_data(sent.invitation, sent.link, sent.emailed))

    def delete(self, request, workspace_slug, invitation_id):
        invitation = selectors.invitation_get(
            workspace=request.workspace, invitation_id=invitation_id
        )
        invitations.invitation_revoke(invitation=invitation, actor=request.user)
        return Response(status=204)
