from django.urls import path

from . import views

app_name = "shell"

urlpatterns = [
    path("", views.home, name="home"),
    path("w/<slug:workspace_slug>/", views.workspace_home, name="workspace_home"),
    path("docs/authoring/", views.authoring_guide, name="authoring_guide"),
]
