"""API tokens, members and invitations (under ``/api/w/<workspace_slug>/``) and workspaces
(under ``/api/``)."""

from django.urls import path

from . import api, team_api

urlpatterns = [
    path("tokens/", api.ApiTokenListApi.as_view(), name="api-tokens"),
    path("tokens/<uuid:token_id>/", api.ApiTokenDetailApi.as_view(), name="api-token"),
    path("members/", team_api.MemberListApi.as_view(), name="api-members"),
    path("members/<str:username>/", team_api.MemberDetailApi.as_view(), name="api-member"),
    path("invitations/", team_api.InvitationListApi.as_view(), name="api-invitations"),
    path(
        "invitations/<uuid:invitation_id>/",
        team_api.InvitationDetailApi.as_view(),
        name="api-invitation",
    ),
]

# Under /api/.
workspace_urlpatterns = [
    path("workspaces/", team_api.WorkspaceListApi.as_view(), name="api-workspaces"),
    path("workspaces/<slug:slug>/", team_api.WorkspaceDetailApi.as_view(), name="api-workspace"),
]
