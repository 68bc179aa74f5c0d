from django.urls import path

from . import api

urlpatterns = [
    path("audit/", api.AuditEventListApi.as_view(), name="api-audit"),
    path("audit/verify/", api.AuditVerifyApi.as_view(), name="api-audit-verify"),
    path("settings/data/", api.DataSettingsApi.as_view(), name="api-data-settings"),
]
