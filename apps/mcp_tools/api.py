"""REST API: a flow's MCP tool settings (GET for members, PUT for admins)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.response import Response

from apps.accounts.api import WorkspaceAPIView
from apps.accounts.permissions import Capability
from apps.flows.selectors import flow_get

from . import selectors, services
from .models import FlowTool


class ToolSerializer(serializers.Serializer):
    enabled = serializers.BooleanField()
    name = serializers.CharField(max_length=64)
    description = serializers.CharField(max_length=2000, allow_blank=True, default="")
    input_schema = serializers.JSONField(required=False, default=dict)
    timeout_seconds = serializers.FloatField(min_value=1, max_value=300, default=30.0)


def tool_data(flow: Any, tool: FlowTool | None) -> dict[str, Any]:
    live = selectors.tool_get(workspace_id=flow.workspace_id, name=tool.name) if tool else None
    return {
        "flow": str(flow.id),
        "enabled": tool.enabled if tool else False,
        "listed": live is not None,
        "name": tool.name if tool else "",
        "description": tool.description if tool else "",
        "input_schema": tool.input_schema if tool else {},
        "effective_input_schema": selectors.tool_input_schema(tool) if tool else None,
        "timeout_seconds": tool.timeout_seconds if tool else None,
    }


class FlowToolApi(WorkspaceAPIView):
    """GET: the flow's MCP tool settings (``listed``: agents see it now). PUT (admins):
    change them; 400 with ``error.message`` and ``error.field`` on bad input."""

    capability = Capability.VIEW_FLOWS
    request_serializer = ToolSerializer

    def get(self, request, workspace_slug, flow_id):
        flow = flow_get(workspace=request.workspace, flow_id=flow_id)
        return Response(tool_data(flow, selectors.tool_for_flow(flow=flow)))

    def put(self, request, workspace_slug, flow_id):
        if not self.has_capability(Capability.MANAGE_SETTINGS):
            self.permission_denied(request, message="Only an admin can expose a flow as a tool.")
        flow = flow_get(workspace=request.workspace, flow_id=flow_id)
        body = ToolSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            tool = services.flow_tool_save(flow=flow, actor=request.user, **body.validated_data)
        except services.ToolSettingsError as error:
            return Response({"error": {"message": error.message, "field": error.field}}, 400)
        return Response(tool_data(flow, tool))
