"""MCP tool pages: the workspace's tools (how agents connect) and one flow's tool settings
(admins switch a published flow on as a tool, with the description agents read)."""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render

from apps.accounts.decorators import WorkspaceRequest, workspace_view
from apps.accounts.permissions import Capability, can
from apps.flows.selectors import flow_get

from . import selectors, services
from .forms import FlowToolForm
from .server import PATH


@workspace_view(Capability.VIEW_FLOWS)
def tool_list_view(request: WorkspaceRequest) -> HttpResponse:
    return render(
        request,
        "mcp_tools/list.html",
        {
            "tools": selectors.tool_settings_list(workspace_id=request.workspace.id),
            "endpoint": request.build_absolute_uri(PATH),
        },
    )


@workspace_view(Capability.VIEW_FLOWS)
def flow_tool_view(request: WorkspaceRequest, flow_id: str) -> HttpResponse:
    """GET shows the flow's tool settings; an admin's POST saves them (400 with the
    reasons on bad input)."""
    flow = flow_get(workspace=request.workspace, flow_id=flow_id)
    tool = selectors.tool_for_flow(flow=flow)
    can_manage = can(request.membership, Capability.MANAGE_SETTINGS)
    status = 200
    if request.method == "POST":
        if not can_manage:
            raise PermissionDenied("Only an admin can expose a flow as an MCP tool.")
        form = FlowToolForm(request.POST)
        if form.is_valid():
            try:
                services.flow_tool_save(flow=flow, actor=request.user, **form.cleaned_data)
            except services.ToolSettingsError as error:
                form.add_error(error.field or None, error.message)
            else:
                messages.success(request, "Tool settings saved.")
                return redirect(request.path)
        status = 400
    else:
        form = FlowToolForm(
            initial={
                "enabled": tool.enabled if tool else False,
                "name": tool.name if tool else flow.slug[:64],
                "description": tool.description if tool else flow.description,
                "input_schema": json.dumps(tool.input_schema, indent=2)
                if tool and tool.input_schema
                else "",
                "timeout_seconds": tool.timeout_seconds if tool else 30,
            }
        )
    derived = selectors.tool_input_schema(tool) if tool else None
    return render(
        request,
        "mcp_tools/flow_tool.html",
        {
            "flow": flow,
            "tool": tool,
            "form": form,
            "can_manage": can_manage,
            "schema_in_use": json.dumps(derived, indent=2) if derived else "",
            "endpoint": request.build_absolute_uri(PATH),
        },
        status=status,
    )
