"""The ``policy.evaluate`` block: ask a published policy, branch on its answer."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from apps.blocks.base import Block, BlockConfig, BlockContext, Result
from apps.blocks.expressions import Expression, ExpressionError

ALLOW, DENY = "allow", "deny"


class PolicyEvaluateConfig(BlockConfig):
    policy: str = Field(min_length=1, max_length=60, description="Slug of the policy")
    rule: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    input: dict[str, Expression] = Field(
        default_factory=dict, description="Policy input fields, each a CEL expression"
    )
    routes: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="Route names the rule may return; each becomes an output port",
    )

    @field_validator("routes")
    @classmethod
    def _routes_are_port_names(cls, routes: list[str]) -> list[str]:
        for route in routes:
            if not route.isidentifier() or route in (ALLOW, DENY):
                raise ValueError(f"{route!r} cannot be a route name")
        if len(set(routes)) != len(routes):
            raise ValueError("route names must be unique")
        return routes


class PolicyEvaluateBlock(Block):
    """Decide with a Rego policy: allow, deny, or a named route, with reasons.

    The rule's value decides the port: a route name listed in ``routes`` (or an object
    whose ``route`` is one) takes that port; otherwise ``allow`` or ``deny``. Any failure
    (the input cannot be built, the policy errs, times out or is undefined) takes ``deny``
    with the error in ``reasons``: policies fail closed.
    """

    key = "policy.evaluate"
    title = "Policy decision"
    category = "policy"
    icon = "shield"
    Config = PolicyEvaluateConfig
    ports = (ALLOW, DENY)
    timeout_seconds = 5.0

    @classmethod
    def output_ports(cls, config: BlockConfig) -> tuple[str, ...]:
        routes = tuple(getattr(config, "routes", ()))
        return (*routes, ALLOW, DENY)

    def execute(self, ctx: BlockContext, config: Any, input: Any) -> Result:
        try:
            policy_input = ctx.evaluate_tree(dict(config.input))
        except ExpressionError as error:
            return self._denied(config, f"cannot build the policy input: {error}")
        decision = ctx.service("policies").evaluate(
            policy=config.policy,
            rule=config.rule,
            input=policy_input,
            source=f"flow run {ctx.run_id} node {ctx.node_id}",
        )
        output = {
            "allow": decision.allow,
            "result": decision.result,
            "reasons": list(decision.reasons),
            "policy": decision.policy,
            "version": decision.version,
        }
        meta = {
            "policy": decision.policy,
            "policy_version": decision.version,
            "duration_ms": round(decision.duration_ms, 3),
            "reasons": list(decision.reasons),
        }
        if decision.error:
            meta["error"] = decision.error
        return Result(output=output, port=self._port(config, decision), meta=meta)

    @staticmethod
    def _port(config: Any, decision: Any) -> str:
        if decision.error:
            return DENY
        route = decision.result
        if isinstance(route, dict):
            route = route.get("route")
        if isinstance(route, str) and route in config.routes:
            return route
        return ALLOW if decision.allow else DENY

    @staticmethod
    def _denied(config: Any, message: str) -> Result:
        output = {
            "allow": False,
            "result": None,
            "reasons": [message],
            "policy": config.policy,
            "version": "",
        }
        meta = {
            "policy": config.policy,
            "policy_version": "",
            "duration_ms": 0.0,
            "error": message,
            "reasons": [message],
        }
        return Result(output=output, port=DENY, meta=meta)


def register() -> None:
    from apps.blocks.registry import register_block, register_service

    from .services import WorkspacePolicies

    register_block(PolicyEvaluateBlock)
    register_service("policies", WorkspacePolicies)
