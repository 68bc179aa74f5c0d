from django.urls import path

from . import api

urlpatterns = [
    path("dashboard/", api.DashboardApi.as_view(), name="api-dashboard"),
    path("dashboard/slo/", api.SloTargetsApi.as_view(), name="api-slo-targets"),
]
