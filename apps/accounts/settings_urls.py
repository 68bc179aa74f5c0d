"""Workspace-scoped settings pages, mounted under ``/w/<slug>/settings/``."""

from django.urls import path

from . import group_views, team_views, views

app_name = "settings"

urlpatterns = [
    path("", views.workspace_settings, name="index"),
    path("tokens/", views.api_tokens, name="tokens"),
    path("tokens/<uuid:token_id>/revoke/", views.api_token_revoke, name="token_revoke"),
    path("members/", team_views.members, name="members"),
    path("members/invite/", team_views.invite, name="invite"),
    path("members/<int:user_id>/role/", team_views.member_role, name="member_role"),
    path("members/<int:user_id>/active/", team_views.member_active, name="member_active"),
    path("members/<int:user_id>/remove/", team_views.member_remove, name="member_remove"),
    path(
        "invitations/<uuid:invitation_id>/resend/",
        team_views.invitation_action,
        {"action": "resend"},
        name="invitation_resend",
    ),
    path(
        "invitations/<uuid:invitation_id>/revoke/",
        team_views.invitation_action,
        {"action": "revoke"},
        name="invitation_revoke",
    ),
    path("workspace/", team_views.workspace_edit, name="workspace"),
    path("groups/", group_views.group_list, name="groups"),
    path("groups/<uuid:group_id>/members/", group_views.group_members, name="group_members"),
    path("groups/<uuid:group_id>/delete/", group_views.group_delete, name="group_delete"),
]
