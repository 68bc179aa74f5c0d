from django.urls import path

from . import api

urlpatterns = [
    path("monitoring/labels/", api.LabelApi.as_view(), name="api-monitoring-labels"),
    path("monitoring/models/", api.ModelMonitorListApi.as_view(), name="api-monitoring-models"),
    path(
        "monitoring/models/<str:model_name>/",
        api.ModelMonitoringApi.as_view(),
        name="api-monitoring-model",
    ),
    path(
        "monitoring/alerts/<uuid:alert_id>/acknowledge/",
        api.AlertAcknowledgeApi.as_view(),
        name="api-monitoring-alert-acknowledge",
    ),
]
