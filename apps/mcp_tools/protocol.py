"""The MCP server behind ``/mcp`` (``server.py`` routes and authenticates): the official
SDK's low-level ``Server`` with ``tools/list`` and ``tools/call`` handlers, served by its
``StreamableHTTPSessionManager``, stateless with JSON answers. The caller's API token is
in the ASGI scope (``server.TOKEN_SCOPE_KEY``)."""

from __future__ import annotations

import json
from typing import Any

import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError

from apps.accounts.models import ApiToken

from . import selectors, services
from .server import TOKEN_SCOPE_KEY, in_thread


def _token(ctx: Any) -> ApiToken:
    return ctx.request.scope[TOKEN_SCOPE_KEY]


def _list_tools_sync(token: ApiToken) -> list[types.Tool]:
    return [
        types.Tool(
            name=tool.name,
            title=tool.flow.name,
            description=tool.description,
            input_schema=selectors.tool_input_schema(tool),
        )
        for tool in selectors.tool_list(workspace_id=token.workspace_id)
    ]


async def _list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
    return types.ListToolsResult(tools=await in_thread(_list_tools_sync)(_token(ctx)))


async def _call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
    try:
        outcome = await in_thread(services.tool_call)(
            token=_token(ctx), name=params.name, arguments=params.arguments or {}
        )
    except services.ToolCallRefused as refused:
        if refused.code == "unknown_tool":
            raise MCPError(types.INVALID_PARAMS, refused.message) from None
        body = {"error": refused.code, "message": refused.message, "reasons": refused.reasons}
        text = "; ".join([refused.message, *refused.reasons])
        return types.CallToolResult(
            content=[types.TextContent(text=text)], structured_content=body, is_error=True
        )
    body = {**outcome.details, "finished": outcome.finished, "result": outcome.result}
    return types.CallToolResult(
        content=[types.TextContent(text=json.dumps(outcome.result, default=str))],
        structured_content=body,
        is_error=outcome.is_error,
    )


def build_server() -> Server[Any]:
    return Server(
        "flowgate",
        title="Flowgate",
        instructions="Published Flowgate flows. Each call is a governed, audited run.",
        on_list_tools=_list_tools,
        on_call_tool=_call_tool,
    )


def session_manager() -> StreamableHTTPSessionManager:
    return StreamableHTTPSessionManager(app=build_server(), stateless=True, json_response=True)
