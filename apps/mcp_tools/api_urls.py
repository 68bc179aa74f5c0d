from django.urls import path

from . import api

urlpatterns = [
    path("flows/<uuid:flow_id>/mcp-tool/", api.FlowToolApi.as_view(), name="api-flow-mcp-tool"),
]
