from django.urls import path

from . import views

app_name = "core"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("docs/authoring/", views.authoring_guide, name="authoring_guide"),
    path("w/<slug:workspace_slug>/", views.workspace_home, name="workspace_home"),
]
