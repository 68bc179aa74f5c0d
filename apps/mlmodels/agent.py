"""The ``ai.agent`` block: a language model that reaches a goal by calling tools.

The builder gives a goal (a template), the tools the model may call (published sub-flows
and chosen action blocks, each with a description and an input JSON Schema, derived from
the flow's sample input or the block's config when not written), a step budget (tool
calls) and a token budget. Each turn the model (a registered model or an LLM connection,
as for ``ai.generate``) gets the conversation and the tools in OpenAI's ``tools`` format
and either answers (→ ``out``) or asks for tool calls.

Every call is durable: the turn's calls are recorded (``agent_calls`` service) before any
runs, each with an idempotency key derived from (run, node, turn, call index). Before a
call runs, the workspace's ``agent_tools`` gate policy decides allow, deny or review;
denied calls are reported back to the model as the tool's result; review parks the step on
an inbox task, and the reviewer's approval runs the call (a rejection is reported as a
denial). A sub-flow call is a child run the step waits for. When the step is executed
again (a crash, a retry, a resume after a wait) it replays the recorded turns instead of
asking the model again and reuses every finished call's output.

Budget exhaustion (more tool calls than ``max_steps``, or more tokens than
``token_budget``) takes the ``exhausted`` port; a model that cannot be reached or refuses
the request (unknown model, prompt over its context length) fails the step with the reason.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar, Literal

from django.utils import timezone
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from apps.blocks.base import Block, BlockConfig, BlockContext, BlockError, Result, Wait
from apps.blocks.expressions import TEMPLATE_PLACEHOLDER, ExpressionError, Template

from .ai_blocks import ModelOptions, _ask, _provider_gate, _render, _text, token_cost
from .openai_wire import ChatAnswer

EXHAUSTED = "exhausted"
TOOL_NAME = r"^[A-Za-z0-9_\-]{1,64}$"
# What the model reads of a tool's result (the call's row keeps all of it).
RESULT_CHARS = 600
SUBFLOW_POLL = timedelta(seconds=15)  # safety net if a child's completion signal is missed
# Triggers and blocks that wait, join or start runs are not tools.
NOT_TOOLS = frozenset({"trigger", "flow", "human"})
SIMPLE_TYPES = ("string", "integer", "number", "boolean")
FINISHED = ("succeeded", "failed", "denied")


class AgentTool(BaseModel):
    """One tool the model may call: an action block (``block`` with fixed ``config``
    whose expressions may read the model's arguments as ``args``) or a published flow
    (``flow``, run as a sub-flow with the arguments as its input)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=TOOL_NAME, description="What the model calls it")
    description: str = Field(default="", max_length=1000)
    block: str = Field(default="", max_length=80, description="An action block type")
    config: dict[str, Any] = Field(
        default_factory=dict, description="The block's fixed config; args.<name> is the model's"
    )
    flow: str = Field(default="", max_length=80, description="Slug of a published flow")
    version: int | None = Field(default=None, ge=1)
    parameters: dict[str, Any] | None = Field(
        default=None,
        description="JSON Schema of the arguments; derived from the block or flow when empty",
    )

    @model_validator(mode="after")
    def _one_target(self) -> AgentTool:
        if bool(self.block) == bool(self.flow):
            raise ValueError(f"tool {self.name}: set either a block or a flow")
        if self.block:
            block_class(self.block)
        if self.parameters is not None:
            import jsonschema

            try:
                jsonschema.validators.validator_for(self.parameters).check_schema(self.parameters)
            except jsonschema.SchemaError as error:
                raise ValueError(f"tool {self.name}: parameters: {error.message}") from None
            if self.parameters.get("type") != "object":
                raise ValueError(f"tool {self.name}: parameters must be an object schema")
        return self


class AgentConfig(ModelOptions):
    goal: Template = Field(min_length=1, max_length=20000, description="{{ }} fields allowed")
    system: Template = Field(default="", max_length=20000, description="Instructions")
    tools: list[AgentTool] = Field(
        min_length=1,
        max_length=20,
        # The editor offers its tool picker for this field (published flows, action blocks).
        json_schema_extra={"format": "agent-tools"},
    )
    max_steps: int = Field(default=5, ge=1, le=50, description="Tool calls at most")
    parallel_tool_calls: bool | None = Field(
        default=None,
        description="May the model ask for several tools in one turn (empty: the provider's "
        "default; the model service's toy asks for one)",
    )
    token_budget: int = Field(default=20000, ge=100, le=2_000_000, description="All turns")
    reviewer_role: Literal["reviewer", "admin", "builder"] = Field(
        default="reviewer", description="Who approves a call the policy sends to review"
    )

    @field_validator("tools")
    @classmethod
    def _unique_names(cls, tools: list[AgentTool]) -> list[AgentTool]:
        if len({tool.name for tool in tools}) != len(tools):
            raise ValueError("tool names must be unique")
        return tools


def block_class(key: str) -> Any:
    from apps.blocks.registry import registry

    found = registry.get(key)
    if found is None:
        raise ValueError(f"there is no block {key!r}")
    if not may_be_tool(found):
        raise ValueError(
            f"{key} cannot be an agent's tool (a trigger, or it waits, joins or starts runs)"
        )
    return found


def may_be_tool(block: Any) -> bool:
    """Whether an agent may call ``block``: not a trigger, and it neither waits, joins
    nor starts runs."""
    return not (
        block.category in NOT_TOOLS or block.may_wait or block.joins or block.key == "ai.agent"
    )


def derived_parameters(key: str, preset: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments of a block tool without written parameters: the block's config
    fields the builder did not fix, those of a simple type (text, number, yes/no, a
    choice). An expression field takes the model's value as a literal."""
    schema = block_class(key).Config.model_json_schema()
    properties, required = {}, []
    for name, spec in (schema.get("properties") or {}).items():
        if name in preset:
            continue
        simple = {k: v for k, v in spec.items() if k in ("type", "enum", "description")}
        if simple.get("type") in SIMPLE_TYPES or "enum" in simple:
            properties[name] = simple
            if name in (schema.get("required") or ()):
                required.append(name)
    return {"type": "object", "properties": properties, "required": required}


class ToolContext:
    """The agent's context for one block tool: ``args`` in expressions, and the call's
    own idempotency key."""

    def __init__(self, ctx: BlockContext, args: dict[str, Any], key: str) -> None:
        self._ctx, self._extra = ctx, {"args": args}
        self.workspace_id, self.run_id, self.node_id = ctx.workspace_id, ctx.run_id, ctx.node_id
        self.attempt, self.correlation_id = ctx.attempt, ctx.correlation_id
        self.idempotency_key, self.dry_run, self.logger = key, ctx.dry_run, ctx.logger

    def evaluate(self, expression: str, extra: Mapping[str, Any] | None = None) -> Any:
        return self._ctx.evaluate(expression, {**self._extra, **(extra or {})})

    def evaluate_tree(self, value: Any, extra: Mapping[str, Any] | None = None) -> Any:
        return self._ctx.evaluate_tree(value, {**self._extra, **(extra or {})})

    def render(self, template: str) -> str:
        return TEMPLATE_PLACEHOLDER.sub(
            lambda match: _text(self.evaluate(match.group(1).strip())), template
        )

    def service(self, name: str) -> Any:
        return self._ctx.service(name)


class Paused(Exception):
    """A call waits (for a reviewer, for a child run): park the step."""

    def __init__(self, wait: Wait) -> None:
        self.wait = wait


class AIAgentBlock(Block):
    """Reach a goal with a language model that calls tools, each call governed by policy.

    Tools are published flows and chosen action blocks; each call is a recorded step of
    the run (never repeated after a crash), checked by the workspace's ``agent_tools``
    policy (allow, deny, or review by a person in the inbox). The answer goes to ``out``;
    running out of steps or tokens to ``exhausted``.
    """

    key = "ai.agent"
    title = "AI agent"
    category = "model"
    icon = "bot"
    Config: ClassVar[type[BlockConfig]] = AgentConfig
    ports = ("out", EXHAUSTED)
    calls_out = True
    may_wait = True
    max_attempts = 3
    # Several model calls and tool calls; each model call keeps the config's timeout.
    timeout_seconds = 600.0

    def execute(self, ctx: BlockContext, config: Any, input: Any) -> Result:
        return _Agent(ctx, config).advance()

    def resume(
        self, ctx: BlockContext, config: Any, wait: Wait, signal: Mapping[str, Any]
    ) -> Result:
        return _Agent(ctx, config).advance(wait, signal)


class _Agent:
    """One stretch of an agent step: replay what is recorded, then go on."""

    def __init__(self, ctx: BlockContext, config: Any) -> None:
        self.ctx, self.config = ctx, config
        self.calls = ctx.service("agent_calls")
        self.tools = {tool.name: tool for tool in config.tools}
        self.flows: dict[str, dict[str, Any]] = {}
        self.usage = {"prompt": 0, "completion": 0}
        self.model_ms = 0.0
        self.last: dict[str, Any] = {}
        self.started = time.monotonic()

    # --- the loop ------------------------------------------------------------------
    def advance(self, wait: Wait | None = None, signal: Mapping[str, Any] | None = None) -> Result:
        config = self.config
        gate = _provider_gate(self.ctx, config, "ai.agent") if config.connection else None
        system, self.system_shown = _render(self.ctx, config.system)
        goal, self.goal_shown = _render(self.ctx, config.goal)
        offered = self._offered()
        if wait is not None:
            self._apply(wait, signal or {})
        recorded = self.calls.recorded(run_id=self.ctx.run_id, node_id=self.ctx.node_id)
        turns: dict[int, list[dict[str, Any]]] = {}
        for call in recorded:
            turns.setdefault(call["turn"], []).append(call)
        messages: list[dict[str, Any]] = [
            *([{"role": "system", "content": system}] if system else []),
            {"role": "user", "content": goal},
        ]
        made, turn = 0, 0
        try:
            while True:
                calls = turns.get(turn)
                if calls is not None:
                    self._count(calls[0]["turn_meta"])
                else:
                    answer, meta = self._ask(messages, offered)
                    self._count(meta)
                    total = self.usage["prompt"] + self.usage["completion"]
                    if total > config.token_budget:
                        return self._exhausted("tokens", made, gate, answer.text)
                    if not answer.tool_calls:
                        return self._answered(answer.text, made, gate)
                    if made + len(answer.tool_calls) > config.max_steps:
                        return self._exhausted("steps", made, gate, answer.text)
                    calls = self.calls.record_turn(
                        run_id=self.ctx.run_id,
                        node_id=self.ctx.node_id,
                        turn=turn,
                        calls=[self._parsed(call) for call in answer.tool_calls],
                        turn_meta=meta,
                    )
                messages.append(
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [_wire_call(call) for call in calls],
                    }
                )
                for call in calls:
                    content = self._perform(call, turn, made)
                    messages.append(
                        {"role": "tool", "tool_call_id": call["call_id"], "content": content}
                    )
                made += len(calls)
                turn += 1
        except Paused as paused:
            return Result(wait=paused.wait, meta=self._meta(gate, made, None))

    def _offered(self) -> list[dict[str, Any]]:
        """The tools in OpenAI's format."""
        offered: list[dict[str, Any]] = []
        for tool in self.config.tools:
            if tool.flow:
                try:
                    found = self.calls.flow_tool(slug=tool.flow, version=tool.version)
                except LookupError as error:
                    raise BlockError(f"tool {tool.name}: {error}") from None
                self.flows[tool.name] = found
                parameters = tool.parameters or found["parameters"]
                description = tool.description or found["description"]
            else:
                parameters = tool.parameters or derived_parameters(tool.block, tool.config)
                description = tool.description or block_class(tool.block).description()
            offered.append(
                {
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": description,
                        "parameters": parameters,
                    },
                }
            )
        self.parameters: dict[str, dict[str, Any]] = {
            item["function"]["name"]: item["function"] for item in offered
        }
        return offered

    def _ask(
        self, messages: list[dict[str, Any]], offered: list[dict[str, Any]]
    ) -> tuple[ChatAnswer, dict[str, Any]]:
        started = time.monotonic()
        answer = _ask(
            self.ctx,
            self.config,
            messages,
            None,
            timeout=self.config.timeout_seconds,
            tools=offered,
            parallel_tool_calls=self.config.parallel_tool_calls,
        )
        meta = {
            "model": answer.model,
            "model_version": answer.version,
            "model_alias": answer.alias,
            "device": answer.device,
            "finish_reason": answer.finish_reason,
            "usage": {"prompt": answer.prompt_tokens, "completion": answer.completion_tokens},
            "latency_ms": round((time.monotonic() - started) * 1000, 3),
        }
        return answer, meta

    def _count(self, meta: dict[str, Any]) -> None:
        usage = meta.get("usage") or {}
        self.usage["prompt"] += int(usage.get("prompt") or 0)
        self.usage["completion"] += int(usage.get("completion") or 0)
        self.model_ms += float(meta.get("latency_ms") or 0)
        self.last = meta

    def _parsed(self, call: dict[str, str]) -> dict[str, Any]:
        """A model's tool call as the record to keep: the tool it names, its arguments."""
        tool = self.tools.get(call["name"])
        try:
            arguments = json.loads(call["arguments"] or "{}")
        except json.JSONDecodeError:
            arguments = {"_unparsed": call["arguments"][:2000]}
        if not isinstance(arguments, dict):
            arguments = {"_unparsed": call["arguments"][:2000]}
        return {
            "call_id": call["id"],
            "tool": call["name"][:64],
            "kind": "flow" if tool and tool.flow else "block" if tool else "unknown",
            "target": (tool.flow or tool.block) if tool else "",
            "arguments": arguments,
        }

    # --- one call ------------------------------------------------------------------
    def _perform(self, call: dict[str, Any], turn: int, made: int) -> str:
        """Bring one recorded call to an end (or park on it); what the model reads."""
        status = call["status"]
        if status in FINISHED:
            return _result_text(call)
        position = {"turn": call["turn"], "index": call["index"]}
        if status == "pending":
            problem = self._problem(call)
            if problem:
                return self._finish(call, "failed", error=problem)
            decision = self._decide(call, made)
            if decision["action"] == "deny":
                return self._finish(
                    call, "denied", error="denied by policy: " + "; ".join(decision["reasons"])
                )
            if decision["action"] == "review":
                raise Paused(self._review(call, decision))
            status = "approved"
        if status == "review":
            raise Paused(_review_wait(call))
        if call["kind"] == "flow":
            return self._subflow(call, position)
        return self._block(call, status)

    def _problem(self, call: dict[str, Any]) -> str:
        if call["kind"] == "unknown":
            return f"there is no tool named {call['tool']!r}"
        if "_unparsed" in call["arguments"]:
            return "the arguments are not a JSON object"
        import jsonschema

        schema = self.parameters[call["tool"]]["parameters"]
        errors = list(
            jsonschema.validators.validator_for(schema)(schema).iter_errors(call["arguments"])
        )
        if errors:
            return "invalid arguments: " + "; ".join(error.message for error in errors[:3])
        return ""

    def _decide(self, call: dict[str, Any], made: int) -> dict[str, Any]:
        """The workspace's agent_tools gate for this call; recorded with the call."""
        tool = self.tools[call["tool"]]
        if tool.flow:
            side_effect = bool(self.flows[tool.name]["side_effect"])
        else:
            side_effect = bool(block_class(tool.block).side_effect)
        decision = self.ctx.service("policies").gate(
            gate="agent_tools",
            input={
                "tool": call["tool"],
                "kind": call["kind"],
                "target": call["target"],
                "side_effect": side_effect,
                "arguments": call["arguments"],
                "agent": self.ctx.node_id,
                "run": str(self.ctx.run_id),
                "model": self.last.get("model", ""),
                "provider": _provider(self.config),
                "turn": call["turn"],
                "calls": made + call["index"],
            },
        )
        result = decision.result if isinstance(decision.result, dict) else {}
        action = result.get("action") if not decision.error else None
        if action not in ("allow", "deny", "review") or (action == "allow") != decision.allow:
            action = "deny"
        record = {
            "action": action,
            "reasons": list(decision.reasons) or [decision.error or "no reason given"],
            "policy": decision.policy,
            "version": decision.version,
        }
        self._update(call, decision=record)
        call["decision"] = record
        return record

    def _review(self, call: dict[str, Any], decision: dict[str, Any]) -> Wait:
        task = self.ctx.service("approvals").create(
            run_id=self.ctx.run_id,
            node_id=self.ctx.node_id,
            call_key=call["key"],
            title=f"Agent wants to call {call['tool']}",
            description="The agent_tools policy asks a person: " + "; ".join(decision["reasons"]),
            data={
                "tool": call["tool"],
                "runs": f"{call['kind']} {call['target']}",
                "arguments": call["arguments"],
                "reasons": decision["reasons"],
                "goal": self.goal_shown,
            },
            form=[],
            assignee_role=self.config.reviewer_role,
            assignee_users=[],
            required_approvals=1,
            priority=0,
            due_at=None,
            on_timeout="expire",
            escalation=None,
        )
        self._update(call, status="review", task_id=task)
        call.update(status="review", task_id=task)
        return _review_wait(call)

    def _block(self, call: dict[str, Any], status: str) -> str:
        tool = self.tools[call["tool"]]
        block = block_class(tool.block)
        if status == "running" and block.side_effect and not block.idempotent:
            raise BlockError(
                f"tool call {call['tool']} (turn {call['turn']}) was interrupted while its "
                "side effect was in progress; it may or may not have happened. Check, then "
                "retry the run or cancel it.",
                details={"tool": call["tool"], "key": call["key"]},
            )
        self._update(call, status="running")
        arguments = call["arguments"]
        if self.ctx.dry_run and block.side_effect:
            return self._finish(call, "succeeded", output={"dry_run": True, "block": tool.block})
        try:
            config = block.Config.model_validate(
                {**tool.config, **_literal_fields(tool, arguments)}
            )
            result = block().execute(ToolContext(self.ctx, arguments, call["key"]), config, {})
        except (BlockError, ExpressionError, ValueError) as error:
            return self._finish(call, "failed", error=_error_text(error))
        if result.wait is not None:
            return self._finish(call, "failed", error=f"{tool.block} cannot wait as a tool")
        output = {"output": result.output}
        if result.port != "out":
            output["port"] = result.port
        return self._finish(call, "succeeded", output=output)

    def _subflow(self, call: dict[str, Any], position: dict[str, int]) -> str:
        subflows = self.ctx.service("subflows")
        child = call["child_run_id"]
        if not child:
            tool = self.tools[call["tool"]]
            try:
                child = subflows.start(
                    flow_slug=tool.flow,
                    version=self.flows[tool.name]["version"],
                    body=call["arguments"],
                    parent_run_id=self.ctx.run_id,
                    node_id=self.ctx.node_id,
                    key=call["key"],
                )
            except BlockError as error:
                return self._finish(call, "failed", error=error.message)
            self._update(call, status="running", child_run_id=child)
        outcome = subflows.outcomes([child])[0]
        if outcome is None:
            raise Paused(
                Wait(
                    kind="subflow",
                    reference=child,
                    deadline=timezone.now() + SUBFLOW_POLL,
                    state={**position, "child": child},
                )
            )
        if outcome["status"] != "succeeded":
            reason = (outcome["error"] or {}).get("message") or outcome["status"]
            return self._finish(call, "failed", error=f"the sub-flow run failed: {reason}")
        return self._finish(call, "succeeded", output={"output": outcome["output"]})

    def _apply(self, wait: Wait, signal: Mapping[str, Any]) -> None:
        """A reviewer's decision ends a review wait; a child run's end is read as the
        replay reaches its call."""
        if wait.kind != "approval":
            return
        state = wait.state
        fields = {
            "reviewer": str(signal.get("reviewer") or ""),
            "review_comment": str(signal.get("comment") or ""),
        }
        if signal.get("port") == "approved":
            fields["status"] = "approved"
        else:
            who = fields["reviewer"] or "nobody (the task expired)"
            comment = f": {fields['review_comment']}" if fields["review_comment"] else ""
            fields.update(status="denied", error=f"rejected by {who}{comment}")
        self.calls.update(
            run_id=self.ctx.run_id,
            node_id=self.ctx.node_id,
            turn=state["turn"],
            index=state["index"],
            **fields,
        )

    def _finish(
        self, call: dict[str, Any], status: str, *, output: Any = None, error: str = ""
    ) -> str:
        from apps.core import jsonsafe

        if output is not None and (problem := jsonsafe.storage_problem(output)):
            status, output, error = "failed", None, f"the tool's output cannot be stored: {problem}"
        self._update(call, status=status, output=output, error=error)
        call.update(status=status, output=output, error=error)
        return _result_text(call)

    def _update(self, call: dict[str, Any], **fields: Any) -> None:
        self.calls.update(
            run_id=self.ctx.run_id,
            node_id=self.ctx.node_id,
            turn=call["turn"],
            index=call["index"],
            **fields,
        )

    # --- endings -------------------------------------------------------------------
    def _answered(self, text: str, made: int, gate: dict[str, Any] | None) -> Result:
        meta = self._meta(gate, made, "answered")
        output = {"answer": text, "calls": made, "turns": meta["turns"], "usage": meta["usage"]}
        return Result(output=output, meta=meta)

    def _exhausted(self, reason: str, made: int, gate: dict[str, Any] | None, text: str) -> Result:
        meta = self._meta(gate, made, f"{reason} exhausted")
        budget = self.config.max_steps if reason == "steps" else self.config.token_budget
        output = {
            "reason": reason,
            "budget": budget,
            "calls": made,
            "usage": meta["usage"],
            "answer": text,
        }
        return Result(output=output, port=EXHAUSTED, meta=meta)

    def _meta(self, gate: dict[str, Any] | None, made: int, end: str | None) -> dict[str, Any]:
        redaction = self.ctx.service("redaction")
        recorded = self.calls.recorded(run_id=self.ctx.run_id, node_id=self.ctx.node_id)
        total = self.usage["prompt"] + self.usage["completion"]
        model = self.last.get("model") or self.config.model or self.config.provider_model
        meta: dict[str, Any] = {
            "model": model,
            "model_version": self.last.get("model_version", ""),
            "model_alias": self.last.get("model_alias", ""),
            "provider": _provider(self.config),
            "device": self.last.get("device", ""),
            "prompt": self.goal_shown,
            "usage": {**self.usage, "total": total},
            "cost": token_cost(model, total),
            "latency_ms": round(self.model_ms, 3),
            "turns": len({call["turn"] for call in recorded}) + (1 if end == "answered" else 0),
            "calls": [redaction.redact(_call_summary(call)) for call in recorded],
            "budget": {"calls": self.config.max_steps, "usage": self.config.token_budget},
        }
        if end:
            meta["end"] = end
        if self.system_shown:
            meta["system"] = self.system_shown
        if gate:
            meta["provider_policy"] = gate
        reviewers = sorted({call["reviewer"] for call in recorded if call["reviewer"]})
        if reviewers:
            meta["reviewer"] = ", ".join(reviewers)
        return meta


def _provider(config: Any) -> str:
    return f"connection:{config.connection}" if config.connection else "flowgate-models"


def _wire_call(call: dict[str, Any]) -> dict[str, Any]:
    arguments = call["arguments"]
    text = arguments.get("_unparsed") if "_unparsed" in arguments else json.dumps(arguments)
    return {
        "id": call["call_id"],
        "type": "function",
        "function": {"name": call["tool"], "arguments": text},
    }


def _review_wait(call: dict[str, Any]) -> Wait:
    return Wait(
        kind="approval",
        reference=call["task_id"],
        state={"turn": call["turn"], "index": call["index"], "task": call["task_id"]},
    )


def _result_text(call: dict[str, Any]) -> str:
    """What the model reads as the call's result."""
    if call["status"] == "succeeded":
        text = json.dumps((call["output"] or {}).get("output"), default=str)
    elif call["status"] == "denied":
        text = f"DENIED: {call['error']}"
    else:
        text = f"ERROR: {call['error']}"
    return text if len(text) <= RESULT_CHARS else text[: RESULT_CHARS - 1] + "…"


def _call_summary(call: dict[str, Any]) -> dict[str, Any]:
    decision = call["decision"] or {}
    summary = {
        "turn": call["turn"],
        "index": call["index"],
        "tool": call["tool"],
        "kind": call["kind"],
        "target": call["target"],
        "arguments": call["arguments"],
        "status": call["status"],
        "policy_action": decision.get("action", ""),
        "policy_reasons": decision.get("reasons", []),
        "policy": decision.get("policy", ""),
        "policy_version": decision.get("version", ""),
        "reviewer": call["reviewer"],
        "output": (call["output"] or {}).get("output"),
        "error": call["error"],
        "key": call["key"],
    }
    if call["child_run_id"]:
        summary["child_run"] = call["child_run_id"]
    if call["task_id"]:
        summary["task"] = call["task_id"]
    return summary


def _literal_fields(tool: AgentTool, arguments: dict[str, Any]) -> dict[str, Any]:
    """The model's arguments named like a config field the builder left open fill that
    field, taken as literals: an expression field gets a CEL literal, a template its text.
    (So parameters written out, as the editor's picker pre-fills them from the derived
    ones, behave as the derived ones; other arguments are read as ``args.<name>``.)"""
    schema = block_class(tool.block).Config.model_json_schema().get("properties") or {}
    fields = {}
    for name, value in arguments.items():
        if name not in schema or name in tool.config:
            continue
        kind = schema[name].get("format")
        if kind == "cel":
            fields[name] = json.dumps(value)
        elif kind == "cel-template":
            fields[name] = _text(value).replace("{{", "{ {")
        else:
            fields[name] = value
    return fields


def _error_text(error: Exception) -> str:
    if isinstance(error, BlockError):
        return error.message
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def register() -> None:
    from apps.blocks.registry import register_block

    register_block(AIAgentBlock)
