"""Settings → Data, mounted under ``/w/<slug>/settings/data/``."""

from django.urls import path

from . import views

app_name = "data_settings"

urlpatterns = [
    path("", views.data_settings_view, name="edit"),
]
