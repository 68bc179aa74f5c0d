"""The policies Flowgate ships: the gate policies and the demo templates' policies.

Each is a ``.rego`` file next to this module plus its metadata and unit tests below. They are
created (and their first version published) in a workspace by
``services.policy_defaults_ensure``: at ``seed_demo`` for the demo workspace, and on first
use of a gate for any other workspace. Admins edit them like any other policy afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ShippedTest:
    name: str
    rule: str
    input: dict[str, Any]
    expected: Any


@dataclass(frozen=True)
class ShippedPolicy:
    slug: str
    name: str
    description: str
    gate: str
    tests: tuple[ShippedTest, ...]

    @property
    def source(self) -> str:
        return (HERE / f"{self.slug}.rego").read_text()


_SIGNED_GOOD_MODEL = {
    "model": "claim-fraud",
    "version": "3",
    "target": "production",
    "metrics": {"auc": 0.91, "recall": 0.8},
    "thresholds": {"auc": 0.85, "recall": 0.7},
    "has_signature": True,
    "artifact_sha256": "ab" * 32,
    "expected_sha256": "ab" * 32,
    "requested_by": "builder",
    "approved_by": "admin",
}

_SAFE_FLOW = {
    "schema": "flowgate/flow@1",
    "nodes": [
        {"id": "hook", "type": "trigger.webhook", "config": {}},
        {
            "id": "post",
            "type": "connector.http",
            "config": {"url": "https://api.example.com/v1/tickets"},
        },
    ],
    "edges": [{"from": "hook", "to": "post"}],
}

_RISKY_FLOW = {
    "schema": "flowgate/flow@1",
    "nodes": [
        {"id": "hook", "type": "trigger.webhook", "config": {}},
        {
            "id": "leak",
            "type": "connector.http",
            "config": {"url": "https://collector.evil.test/in"},
        },
    ],
    "edges": [{"from": "hook", "to": "leak"}],
}

SHIPPED = (
    ShippedPolicy(
        slug="model_promotion",
        name="Model promotion gate",
        description="Metrics over thresholds, a signature, a matching artifact hash and an "
        "approver "
        "other than the requester before a model version is promoted.",
        gate="model_promotion",
        tests=(
            ShippedTest(
                "all checks pass",
                "decision",
                _SIGNED_GOOD_MODEL,
                {"allow": True, "reasons": ["all checks passed"]},
            ),
            ShippedTest(
                "every check fails",
                "decision",
                {
                    **_SIGNED_GOOD_MODEL,
                    "metrics": {"auc": 0.8},
                    "has_signature": False,
                    "expected_sha256": "cd" * 32,
                    "approved_by": "builder",
                },
                {
                    "allow": False,
                    "reasons": [
                        "metric auc = 0.8 is below 0.85",
                        "metric recall is missing",
                        "the model version has no signature",
                        "the artifact checksum does not match the registered one",
                        "the requester cannot approve their own promotion",
                    ],
                },
            ),
            ShippedTest(
                "empty input is denied",
                "decision",
                {},
                {
                    "allow": False,
                    "reasons": [
                        "the model version has no signature",
                        "the artifact checksum does not match the registered one",
                        "the promotion has no approver",
                    ],
                },
            ),
            ShippedTest(
                "no approver is denied",
                "decision",
                {**_SIGNED_GOOD_MODEL, "approved_by": ""},
                {"allow": False, "reasons": ["the promotion has no approver"]},
            ),
            ShippedTest(
                "an emergency rollback to the previous version needs no second admin",
                "decision",
                {
                    **_SIGNED_GOOD_MODEL,
                    "change": "rollback",
                    "previous_version": "3",
                    "approved_by": "",
                },
                {"allow": True, "reasons": ["all checks passed"]},
            ),
            ShippedTest(
                "a rollback to any other version needs a second admin",
                "decision",
                {
                    **_SIGNED_GOOD_MODEL,
                    "change": "rollback",
                    "previous_version": "2",
                    "approved_by": "",
                },
                {"allow": False, "reasons": ["the promotion has no approver"]},
            ),
        ),
    ),
    ShippedPolicy(
        slug="ai_provider",
        name="AI provider gate",
        description="Which language-model providers an AI step may send run data to: the "
        "model service always; outside providers unless the workspace keeps prompts in house.",
        gate="ai_provider",
        tests=(
            ShippedTest(
                "the model service is in house",
                "decision",
                {"provider": "flowgate-models", "outside": False, "host": "models"},
                {"allow": True, "reasons": ["the model service runs in house"]},
            ),
            ShippedTest(
                "an outside provider is allowed by default",
                "decision",
                {"provider": "connection:openai", "outside": True, "host": "api.example.com"},
                {"allow": True, "reasons": ["this workspace may use outside providers"]},
            ),
            ShippedTest(
                "an in-house vLLM server is allowed",
                "decision",
                {"outside": True, "host": "vllm.internal.example.com"},
                {"allow": True, "reasons": ["vllm.internal.example.com is in house"]},
            ),
            ShippedTest(
                "empty input is denied",
                "decision",
                {},
                {
                    "allow": False,
                    "reasons": [
                        "this workspace keeps prompts in house: an unknown host is an "
                        "outside provider"
                    ],
                },
            ),
        ),
    ),
    ShippedPolicy(
        slug="mcp_tool_call",
        name="MCP tool call gate",
        description="Which callers (API token owners) may call which flows exposed as MCP "
        "tools: every admin and builder, unless a tool is restricted to some roles.",
        gate="mcp_tool_call",
        tests=(
            ShippedTest(
                "a builder may call a tool",
                "decision",
                {"tool": "triage", "caller": "bob", "caller_role": "builder"},
                {"allow": True, "reasons": ["a builder may call triage"]},
            ),
            ShippedTest(
                "empty input is denied",
                "decision",
                {},
                {"allow": False, "reasons": ["the call names no tool or no caller"]},
            ),
        ),
    ),
    ShippedPolicy(
        slug="agent_tools",
        name="Agent tools gate",
        description="Which tool calls an AI agent may make: calls without side effects run, "
        "calls with side effects wait for a person, listed tools are denied.",
        gate="agent_tools",
        tests=(
            ShippedTest(
                "a call without side effects is allowed",
                "decision",
                {"tool": "find_order", "kind": "block", "target": "transform.set"},
                {
                    "allow": True,
                    "action": "allow",
                    "reasons": ["find_order may be called by agents"],
                },
            ),
            ShippedTest(
                "a call with side effects waits for a person",
                "decision",
                {
                    "tool": "notify",
                    "kind": "block",
                    "target": "connector.http",
                    "side_effect": True,
                },
                {
                    "allow": False,
                    "action": "review",
                    "reasons": ["notify has side effects: a person approves the call"],
                },
            ),
            ShippedTest(
                "empty input is denied",
                "decision",
                {},
                {"allow": False, "action": "deny", "reasons": ["the call names no tool"]},
            ),
        ),
    ),
    ShippedPolicy(
        slug="canary_analysis",
        name="Canary analysis",
        description="Roll a canary back when it is worse than production on live signals; "
        "tell the admins when it is ready for a (four-eyes) promotion; hold otherwise.",
        gate="canary_analysis",
        tests=(
            ShippedTest(
                "a worse canary is rolled back",
                "decision",
                {
                    "canary": {"samples": 50, "labelled": 40, "accuracy": 0.5, "confidence": 0.8},
                    "production": {"samples": 50, "accuracy": 0.9, "confidence": 0.8},
                },
                {
                    "action": "rollback",
                    "reasons": ["canary accuracy 0.5 is more than 0.05 below production's 0.9"],
                },
            ),
            ShippedTest(
                "a canary as good as production may be promoted",
                "decision",
                {
                    "canary": {"samples": 50, "labelled": 40, "accuracy": 0.9, "confidence": 0.8},
                    "production": {"samples": 50, "accuracy": 0.88, "confidence": 0.8},
                },
                {
                    "action": "promote_request",
                    "reasons": ["the canary matches or beats production on every live signal"],
                },
            ),
            ShippedTest(
                "a canary that disagrees with production on shadowed calls is rolled back",
                "decision",
                {
                    "canary": {"samples": 50, "labelled": 0},
                    "production": {"samples": 50},
                    "agreement": 0.6,
                    "shadowed": 40,
                },
                {
                    "action": "rollback",
                    "reasons": [
                        "canary agrees with production on 0.6 of shadowed calls, below 0.8"
                    ],
                },
            ),
            ShippedTest(
                "too little traffic holds",
                "decision",
                {},
                {
                    "action": "hold",
                    "reasons": ["waiting for traffic and labels: 0 samples, 0 labelled"],
                },
            ),
        ),
    ),
    ShippedPolicy(
        slug="flow_publish",
        name="Flow publishing gate",
        description="Flows that call hosts outside the allow-list or handle PII fields need "
        "an admin.",
        gate="flow_publish",
        tests=(
            ShippedTest(
                "allow-listed host, builder",
                "decision",
                {"definition": _SAFE_FLOW, "actor": "builder", "actor_role": "builder"},
                {
                    "allow": True,
                    "reasons": ["no HTTP calls outside the allow-list and no PII fields"],
                },
            ),
            ShippedTest(
                "unknown host and PII need an admin",
                "decision",
                {
                    "definition": _RISKY_FLOW,
                    "actor": "builder",
                    "actor_role": "builder",
                    "pii_fields": ["email", "iban"],
                },
                {
                    "allow": False,
                    "reasons": [
                        "node leak calls collector.evil.test, which is not on the allow-list",
                        "the flow handles fields marked PII: email, iban",
                        "an admin must publish this flow",
                    ],
                },
            ),
            ShippedTest(
                "an admin may publish a risky flow",
                "decision",
                {
                    "definition": _RISKY_FLOW,
                    "actor": "admin",
                    "actor_role": "admin",
                    "pii_fields": ["email", "iban"],
                },
                {
                    "allow": True,
                    "reasons": [
                        "published by an admin",
                        "node leak calls collector.evil.test, which is not on the allow-list",
                        "the flow handles fields marked PII: email, iban",
                    ],
                },
            ),
            ShippedTest(
                "no definition is denied",
                "decision",
                {"actor_role": "admin"},
                {"allow": False, "reasons": ["the input has no flow definition"]},
            ),
        ),
    ),
    ShippedPolicy(
        slug="support_triage",
        name="Support triage",
        description="Auto-reply, route to a team, or human review from the classifier's category, "
        "urgency and confidence.",
        gate="",
        tests=(
            ShippedTest(
                "confident simple request is answered",
                "route",
                {"category": "password_reset", "urgency": "low", "confidence": 0.95},
                "auto_reply",
            ),
            ShippedTest(
                "payments go to the team",
                "route",
                {"category": "payments", "urgency": "normal", "confidence": 0.75},
                "route_team",
            ),
            ShippedTest(
                "urgent fraud is reviewed",
                "route",
                {"category": "fraud", "urgency": "high", "confidence": 0.99},
                "review",
            ),
            ShippedTest(
                "unsure classifier is reviewed",
                "route",
                {"category": "payments", "urgency": "low", "confidence": 0.4},
                "review",
            ),
        ),
    ),
    ShippedPolicy(
        slug="expense_limits",
        name="Expense limits",
        description="Approve expenses within the category limit, reject blocked categories and "
        "huge amounts, review the rest.",
        gate="",
        tests=(
            ShippedTest(
                "meal within limit", "route", {"amount": 40, "category": "meals"}, "approve"
            ),
            ShippedTest(
                "travel over limit", "route", {"amount": 2500, "category": "travel"}, "review"
            ),
            ShippedTest(
                "blocked category", "route", {"amount": 20, "category": "gambling"}, "reject"
            ),
            ShippedTest(
                "over the hard limit", "route", {"amount": 25000, "category": "travel"}, "reject"
            ),
            ShippedTest(
                "reasons for review",
                "decision",
                {"amount": 2500, "category": "travel"},
                {"route": "review", "reasons": ["amount 2500 is over the travel limit of 2000"]},
            ),
        ),
    ),
    ShippedPolicy(
        slug="claims",
        name="Claims triage",
        description="Approve low fraud risk, reject high risk with reasons, review the rest "
        "by priority.",
        gate="",
        tests=(
            ShippedTest("low risk is approved", "route", {"risk": 0.1, "amount": 800}, "approve"),
            ShippedTest("middle risk is reviewed", "route", {"risk": 0.5, "amount": 800}, "review"),
            ShippedTest("high risk is rejected", "route", {"risk": 0.93, "amount": 800}, "reject"),
            ShippedTest(
                "rejection has reasons",
                "decision",
                {"risk": 0.93, "amount": 800},
                {
                    "route": "reject",
                    "priority": "high",
                    "reasons": ["fraud risk 0.93 is at or above 0.8"],
                },
            ),
        ),
    ),
)


def shipped(slug: str) -> ShippedPolicy | None:
    return next((policy for policy in SHIPPED if policy.slug == slug), None)


def shipped_for_gate(gate: str) -> ShippedPolicy | None:
    return next((policy for policy in SHIPPED if policy.gate == gate), None)
