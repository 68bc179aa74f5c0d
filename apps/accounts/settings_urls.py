"""Workspace-scoped settings pages, mounted under ``/w/<slug>/settings/``."""

from django.urls import path

from . import views

app_name = "settings"

urlpatterns = [
    path("", views.workspace_settings, name="index"),
]
