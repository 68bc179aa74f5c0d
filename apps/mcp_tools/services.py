"""Writes for MCP tools: an admin's tool settings, and a caller's tool call (a run)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jsonschema
from django.db import transaction

from apps.accounts.models import ApiToken, Membership
from apps.accounts.permissions import Capability, can
from apps.audit.services import audit_record
from apps.flows.definition import FlowGraph
from apps.flows.models import Flow, FlowStatus, FlowVersion
from apps.policies.gates import MCP_TOOL_CALL, evaluate_gate
from apps.runs.blocks import envelope
from apps.runs.models import Run, RunStatus, Trigger
from apps.runs.selectors import run_result
from apps.runs.services import run_start
from apps.runs.triggers import run_inline_or_handover

from .models import TOOL_NAME_PATTERN, FlowTool
from .selectors import tool_get, tool_input_schema

MAX_ERRORS_SHOWN = 5


class ToolSettingsError(Exception):
    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.message, self.field = message, field


def flow_tool_save(
    *,
    flow: Flow,
    actor: Any,
    enabled: bool,
    name: str,
    description: str,
    input_schema: dict[str, Any] | None = None,
    timeout_seconds: float = 30.0,
) -> FlowTool:
    """Create or change ``flow``'s MCP tool settings (an admin's action, audited). Raises
    ToolSettingsError: a bad name or one another tool has, no description, an input schema
    that is not a JSON Schema of an object, or enabling a flow that is not published."""
    import re

    name, description = name.strip(), description.strip()
    if not re.fullmatch(TOOL_NAME_PATTERN, name):
        raise ToolSettingsError(
            "a tool name is 1 to 64 letters, digits, '-' or '_' (what agents call)", "name"
        )
    if FlowTool.objects.filter(workspace_id=flow.workspace_id, name=name).exclude(flow=flow):
        raise ToolSettingsError(f"another flow's tool is already called {name!r}", "name")
    if enabled and not description:
        raise ToolSettingsError(
            "describe the tool: agents read it to decide when to call it", "description"
        )
    if enabled and (flow.latest_version_id is None or flow.status == FlowStatus.ARCHIVED):
        raise ToolSettingsError(
            "only a published flow that is not archived can be a tool", "enabled"
        )
    input_schema = {} if input_schema is None else input_schema
    _check_input_schema(input_schema)
    if not 1 <= timeout_seconds <= 300:
        raise ToolSettingsError("the timeout is 1 to 300 seconds", "timeout_seconds")
    with transaction.atomic():
        tool, created = FlowTool.objects.update_or_create(
            flow=flow,
            defaults={
                "workspace_id": flow.workspace_id,
                "enabled": enabled,
                "name": name,
                "description": description,
                "input_schema": input_schema or {},
                "timeout_seconds": timeout_seconds,
                "updated_by": actor,
            },
        )
        audit_record(
            workspace_id=flow.workspace_id,
            action="flow.mcp_tool_saved",
            actor=actor,
            object_type="flow",
            object_id=flow.pk,
            summary=f"{flow.name}: MCP tool {name!r} {'on' if enabled else 'off'}",
            data={
                "tool": name,
                "enabled": enabled,
                "description": description,
                "input_schema": input_schema or {},
                "timeout_seconds": timeout_seconds,
                "created": created,
            },
        )
    return tool


def _check_input_schema(schema: Any) -> None:
    if schema == {}:
        return
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise ToolSettingsError(
            'the input schema must be an object schema ("type": "object")', "input_schema"
        )
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as error:
        raise ToolSettingsError(
            f"not a valid JSON Schema: {error.message}", "input_schema"
        ) from None


# --- calls ---------------------------------------------------------------------------
class ToolCallRefused(Exception):
    """The call starts no run. ``code``: ``forbidden`` (read-only token, a role that cannot
    start runs, no membership), ``unknown_tool``, ``invalid_arguments``, ``denied`` (the
    ``mcp_tool_call`` gate)."""

    def __init__(self, code: str, message: str, reasons: list[str] | None = None):
        super().__init__(message)
        self.code, self.message, self.reasons = code, message, reasons or []


@dataclass(frozen=True)
class ToolCallOutcome:
    run: Run
    finished: bool  # False: still running (or waiting on a person) when the timeout passed
    result: Any  # the flow's response body, else its output, else the run's error
    is_error: bool
    details: dict[str, Any] = field(default_factory=dict)


def caller_membership(token: ApiToken) -> Membership | None:
    """The token owner's membership of the token's workspace (None once they left it, or
    the workspace is archived)."""
    return (
        Membership.objects.filter(
            user_id=token.user_id,
            workspace_id=token.workspace_id,
            workspace__archived_at__isnull=True,
        )
        .select_related("workspace")
        .first()
    )


def tool_call(*, token: ApiToken, name: str, arguments: dict[str, Any]) -> ToolCallOutcome:
    """Call the tool ``name`` as ``token``'s owner: check the token and role, the arguments
    against the tool's input schema and the ``mcp_tool_call`` gate (logged and audited),
    then start a run of the flow's latest published version (trigger ``mcp``) and wait up
    to the tool's timeout. Raises ToolCallRefused; a run that fails is an outcome with
    ``is_error``, not an exception."""
    membership = caller_membership(token)
    if membership is None:
        raise ToolCallRefused("forbidden", "the token's owner is not a member of its workspace")
    if token.read_only:
        raise ToolCallRefused("forbidden", "a read-only token may list tools but not call them")
    if not can(membership, Capability.START_RUNS):
        raise ToolCallRefused(
            "forbidden", f"a {membership.role} cannot start runs, so cannot call tools"
        )
    tool = tool_get(workspace_id=token.workspace_id, name=name)
    if tool is None:
        raise ToolCallRefused("unknown_tool", f"no tool called {name!r}")
    _check_arguments(tool, arguments)
    decision = evaluate_gate(
        workspace_id=token.workspace_id,
        gate=MCP_TOOL_CALL,
        input={
            "tool": tool.name,
            "flow": tool.flow.slug,
            "caller": token.user.username,
            "caller_role": membership.role,
            "token": token.name,
            "arguments": arguments,
        },
    )
    if not decision.allow:
        raise ToolCallRefused(
            "denied", "the mcp_tool_call policy denied this call", list(decision.reasons)
        )
    version = tool.flow.latest_version
    assert version is not None  # tool_get lists published flows only
    run = _start(tool, version, token, arguments, decision)
    run = run_inline_or_handover(
        run, FlowGraph.parse(version.definition), budget=tool.timeout_seconds
    )
    return _outcome(run)


def _check_arguments(tool: FlowTool, arguments: dict[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(tool_input_schema(tool))
    errors = sorted(validator.iter_errors(arguments), key=lambda error: list(error.path))
    if errors:
        shown = [
            f"{'/'.join(str(part) for part in error.path) or '(arguments)'}: {error.message}"
            for error in errors[:MAX_ERRORS_SHOWN]
        ]
        raise ToolCallRefused(
            "invalid_arguments", "the arguments do not match the tool's input schema", shown
        )


def _start(
    tool: FlowTool,
    version: FlowVersion,
    token: ApiToken,
    arguments: dict[str, Any],
    decision: Any,
) -> Run:
    flow = tool.flow
    with transaction.atomic():
        run = run_start(
            flow=flow,
            version=version,
            trigger=Trigger.MCP,
            payload=envelope(arguments, mcp={"tool": tool.name, "token": token.prefix}),
            actor=token.user,
            enqueue=False,
        ).run
        audit_record(
            workspace_id=flow.workspace_id,
            action="mcp.tool_called",
            actor=token.user,
            object_type="run",
            object_id=run.pk,
            summary=f"MCP tool {tool.name} called: run of {flow.name} v{version.number}",
            data={
                "tool": tool.name,
                "flow": flow.slug,
                "version": version.number,
                "token": token.prefix,
                "policy": decision.policy,
                "policy_version": decision.version,
                "reasons": list(decision.reasons),
            },
        )
    return run


def _outcome(run: Run) -> ToolCallOutcome:
    details = {"run": str(run.pk), "status": run.status}
    if run.status == RunStatus.SUCCEEDED:
        return ToolCallOutcome(run, True, run_result(run), False, details)
    if run.status == RunStatus.FAILED:
        return ToolCallOutcome(run, True, run.error, True, details)
    if run.status == RunStatus.CANCELLED:
        return ToolCallOutcome(run, True, {"message": "the run was cancelled"}, True, details)
    waiting = "waits for a person" if run.status == RunStatus.WAITING else "is still running"
    message = f"run {run.pk} {waiting}; it carries on and its result is on the run's page"
    return ToolCallOutcome(run, False, {"message": message}, False, details)
