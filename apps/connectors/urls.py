"""Settings → Connections, mounted under ``/w/<slug>/settings/connections/``."""

from django.urls import path

from . import views

app_name = "connections"

urlpatterns = [
    path("", views.connection_list_view, name="list"),
    path("egress/", views.egress_settings_view, name="egress"),
    path("new/<slug:type_key>/", views.connection_create_view, name="create"),
    path("<uuid:connection_id>/", views.connection_detail_view, name="detail"),
    path("<uuid:connection_id>/test/", views.connection_test_view, name="test"),
    path("<uuid:connection_id>/delete/", views.connection_delete_view, name="delete"),
]
