from django.urls import path

from . import team_views, views

app_name = "accounts"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("workspaces/", team_views.workspaces, name="workspaces"),
    path(
        "workspaces/<slug:workspace_slug>/restore/",
        team_views.workspace_restore,
        name="workspace_restore",
    ),
    path("invitations/<str:token>/", team_views.accept_invitation, name="invitation"),
]
