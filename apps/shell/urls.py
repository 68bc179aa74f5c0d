from django.urls import path

from . import views

app_name = "shell"

urlpatterns = [
    path("", views.home, name="home"),
    path("w/<slug:workspace_slug>/", views.workspace_home, name="workspace_home"),
]
