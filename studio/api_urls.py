"""The REST API: ``/api/blocks/`` and everything under ``/api/w/<workspace_slug>/``."""

from django.urls import include, path

from apps.accounts.api_urls import workspace_urlpatterns
from apps.blocks.api import BlockListApi, BlockPortsApi, BlockUpgradeApi

workspace_patterns = [
    path("", include("apps.flows.api_urls")),
    path("", include("apps.runs.api_urls")),
    path("", include("apps.audit.api_urls")),
    path("", include("apps.connectors.api_urls")),
    path("", include("apps.inbox.api_urls")),
    path("", include("apps.mlmodels.api_urls")),
    path("", include("apps.dashboard.api_urls")),
    path("", include("apps.accounts.api_urls")),
    path("", include("apps.policies.api_urls")),
    path("", include("apps.monitoring.api_urls")),
    path("", include("apps.mcp_tools.api_urls")),
    path("", include("apps.evaluations.api_urls")),
]

urlpatterns = [
    path("blocks/", BlockListApi.as_view(), name="api-blocks"),
    path("blocks/ports/", BlockPortsApi.as_view(), name="api-block-ports"),
    path("blocks/upgrade/", BlockUpgradeApi.as_view(), name="api-block-upgrade"),
    path("w/<slug:workspace_slug>/", include(workspace_patterns)),
    *workspace_urlpatterns,
]
