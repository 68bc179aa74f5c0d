"""Gates: policy checks around automation (publishing a flow, promoting a model).

``evaluate_gate`` is the one entry point callers use. It evaluates the workspace's published
gate policy (rule ``decision``) — the shipped defaults in ``defaults/`` are installed on first
use and admins edit them like any other policy. Deny by default: a missing policy, an
evaluation error or an undefined result denies. Every gate decision is logged and audited.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from .decision import Decision

FLOW_PUBLISH = "flow_publish"
MODEL_PROMOTION = "model_promotion"
AI_PROVIDER = "ai_provider"
MCP_TOOL_CALL = "mcp_tool_call"
# Answers {"action": hold | promote_request | rollback, "reasons"} rather than allow/deny.
CANARY_ANALYSIS = "canary_analysis"
# Answers {"allow", "action": allow | deny | review, "reasons"}: review parks the agent.
AGENT_TOOLS = "agent_tools"
GATES = (FLOW_PUBLISH, MODEL_PROMOTION, AI_PROVIDER, CANARY_ANALYSIS, MCP_TOOL_CALL, AGENT_TOOLS)
ACTION_GATES = (CANARY_ANALYSIS, AGENT_TOOLS)
GATE_RULE = "decision"


def evaluate_gate(*, workspace_id: Any, gate: str, input: dict[str, Any]) -> Decision:
    """Deny by default. ``input`` for ``model_promotion``: model, version, target alias,
    metrics, thresholds, has_signature, artifact_sha256, expected_sha256, requested_by,
    approved_by. For ``flow_publish``: flow, definition, actor, actor_role. For
    ``ai_provider``: provider, outside, host, model, block, node, run. ``mcp_tool_call``:
    tool, flow, caller, caller_role, token, arguments.
    ``canary_analysis``: model, production and canary signals, agreement, shadowed, limits;
    its result is ``{"action", "reasons"}``. ``agent_tools``: tool, kind, target,
    side_effect, arguments, agent, run, flow, model, provider, turn, calls; its result
    is ``{"allow", "action": allow | deny | review, "reasons"}``."""
    from apps.audit.services import audit_record

    from .selectors import policy_for_gate
    from .services import policy_evaluate

    if gate not in GATES:
        return Decision.deny(f"unknown gate {gate!r}", policy=gate, error="unknown gate")
    policy = policy_for_gate(workspace_id=workspace_id, gate=gate) or _install_default(
        workspace_id, gate
    )
    if policy is None:
        decision = Decision.deny(
            f"no policy decides the {gate} gate", policy=gate, error="no gate policy"
        )
    else:
        decision = policy_evaluate(
            workspace_id=workspace_id,
            slug=policy.slug,
            rule=GATE_RULE,
            input=input,
            source=f"gate {gate}",
        )
    actor = _actor(input)
    audit_record(
        workspace_id=workspace_id,
        action="gate.evaluated",
        actor=actor,
        actor_label="" if actor else str(input.get("actor") or input.get("approved_by") or ""),
        object_type="gate",
        object_id=gate,
        summary=f"{gate}: {_verdict(decision)}",
        data={
            "gate": gate,
            "allow": decision.allow,
            "reasons": decision.reasons,
            "policy": decision.policy,
            "version": decision.version,
            "error": decision.error,
            **({"action": _verdict(decision)} if gate in ACTION_GATES else {}),
        },
    )
    return decision


def _actor(input: dict[str, Any]) -> Any:
    """The user the gate decides for, so the audit trail names them as every other event
    does (their display name), not by username."""
    from apps.accounts.models import User

    username = input.get("actor") or input.get("approved_by") or input.get("caller")
    return User.objects.filter(username=username).first() if username else None


def _verdict(decision: Decision) -> str:
    """What the audit says the gate decided: an action gate (canary analysis) names its
    action, the others allowed or denied."""
    if isinstance(decision.result, dict) and isinstance(decision.result.get("action"), str):
        return decision.result["action"]
    return "allowed" if decision.allow else "denied"


def _install_default(workspace_id: Any, gate: str) -> Any:
    from apps.accounts.models import Workspace

    from .defaults import shipped_for_gate
    from .selectors import policy_for_gate
    from .services import PolicyValidationError, policy_defaults_ensure

    shipped = shipped_for_gate(gate)
    workspace = Workspace.objects.filter(id=workspace_id).first()
    if shipped is None or workspace is None:
        return None
    try:
        with transaction.atomic():
            policy_defaults_ensure(workspace=workspace, slugs=(shipped.slug,))
    except PolicyValidationError:
        pass  # installed concurrently, or a policy with that slug exists without the gate
    return policy_for_gate(workspace_id=workspace_id, gate=gate)
