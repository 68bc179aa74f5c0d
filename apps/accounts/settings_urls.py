"""Workspace-scoped settings pages, mounted under ``/w/<slug>/settings/``."""

from django.urls import path

from . import views

app_name = "settings"

urlpatterns = [
    path("", views.workspace_settings, name="index"),
    path("tokens/", views.api_tokens, name="tokens"),
    path("tokens/<uuid:token_id>/revoke/", views.api_token_revoke, name="token_revoke"),
]
