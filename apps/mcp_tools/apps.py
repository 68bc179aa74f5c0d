from typing import Any

from django.apps import AppConfig


class McpToolsConfig(AppConfig):
    name = "apps.mcp_tools"
    label = "mcp_tools"
    verbose_name = "MCP tools"
    # After the flows: the demo tool is a published template.
    seed_order = 110

    def seed_demo(self, *, workspace: Any, users: dict[str, Any]) -> None:
        from .demo import seed_mcp_tool

        tool = seed_mcp_tool(workspace=workspace, actor=users["admin"])
        if tool is not None:
            print(f"exposed {tool.flow.name} as the MCP tool {tool.name}")
