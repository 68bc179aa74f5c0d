from django.urls import path

from . import api

urlpatterns = [
    path("settings/egress/", api.EgressSettingsApi.as_view(), name="api-egress-settings"),
    path("connections/", api.ConnectionListApi.as_view(), name="api-connections"),
    path(
        "connections/<uuid:connection_id>/",
        api.ConnectionDetailApi.as_view(),
        name="api-connection",
    ),
    path(
        "connections/<uuid:connection_id>/test/",
        api.ConnectionTestApi.as_view(),
        name="api-connection-test",
    ),
]
