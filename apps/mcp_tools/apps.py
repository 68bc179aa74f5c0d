from django.apps import AppConfig


class McpToolsConfig(AppConfig):
    name = "apps.mcp_tools"
    label = "mcp_tools"
    verbose_name = "MCP tools"
