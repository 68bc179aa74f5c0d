"""Reads for MCP tools, always scoped to one workspace."""

from __future__ import annotations

from typing import Any

from apps.flows.definition import FlowGraph
from apps.flows.models import Flow, FlowStatus

from .models import FlowTool


def _live_tools(workspace_id: Any) -> Any:
    return (
        FlowTool.objects.filter(
            workspace_id=workspace_id, enabled=True, flow__latest_version__isnull=False
        )
        .exclude(flow__status=FlowStatus.ARCHIVED)
        .select_related("flow", "flow__latest_version")
    )


def tool_list(*, workspace_id: Any) -> list[FlowTool]:
    """The tools outside agents see: enabled, on a published flow that is not archived."""
    return list(_live_tools(workspace_id).order_by("name"))


def tool_get(*, workspace_id: Any, name: str) -> FlowTool | None:
    """The live tool called ``name`` in the workspace, or None (unknown, disabled,
    unpublished or archived: a caller cannot tell which)."""
    return _live_tools(workspace_id).filter(name=name).first()


def tool_for_flow(*, flow: Flow) -> FlowTool | None:
    return FlowTool.objects.filter(flow=flow).first()


def tool_settings_list(*, workspace_id: Any) -> list[FlowTool]:
    """Every flow's tool settings in the workspace, live or not (the admins' overview)."""
    return list(
        FlowTool.objects.filter(workspace_id=workspace_id)
        .select_related("flow", "flow__latest_version")
        .order_by("name")
    )


def tool_input_schema(tool: FlowTool) -> dict[str, Any]:
    """The JSON Schema of the tool's arguments: the admin's, else one derived from the
    published trigger's ``sample`` (each sample field typed from its value, none required),
    else any object."""
    if tool.input_schema:
        return dict(tool.input_schema)
    version = tool.flow.latest_version
    sample = _trigger_sample(version.definition if version else {})
    schema: dict[str, Any] = {"type": "object"}
    if sample:
        schema["properties"] = {key: schema_of_value(value) for key, value in sample.items()}
    return schema


def _trigger_sample(definition: dict[str, Any]) -> dict[str, Any]:
    if not definition:
        return {}
    graph = FlowGraph.parse(definition)  # a published version: validated when published
    sample = getattr(graph.nodes[graph.trigger].config, "sample", None)
    return sample if isinstance(sample, dict) else {}


def schema_of_value(value: Any) -> dict[str, Any]:
    """A JSON Schema that ``value`` (a sample) is an example of."""
    if isinstance(value, bool):
        return {"type": "boolean", "examples": [value]}
    if isinstance(value, int):
        return {"type": "integer", "examples": [value]}
    if isinstance(value, float):
        return {"type": "number", "examples": [value]}
    if isinstance(value, str):
        return {"type": "string", "examples": [value]}
    if isinstance(value, list):
        return {"type": "array", **({"items": schema_of_value(value[0])} if value else {})}
    if isinstance(value, dict):
        return {
            "type": "object",
            "properties": {key: schema_of_value(item) for key, item in value.items()},
        }
    return {}
