"""The ``ai.generate``, ``ai.classify`` and ``ai.extract`` blocks.

Each asks a language model for one chat completion: a model registered in MLflow and served
by the model service (by alias or exact version, through ``ctx.service("models")``), or an
outside OpenAI-compatible provider (an ``llm_openai`` connection, ``providers.py``). With a
JSON Schema the answer must be JSON that matches it: the model service decodes to the
schema; any answer is still validated, and an invalid one is sent back to the model with
the validation error, at most ``retries`` times, before the step takes the ``invalid`` port.

Every step records the model, version, alias and provider that answered, the prompt with
the workspace's sensitive fields masked, token counts, latency and estimated cost.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, ClassVar, Literal

from django.conf import settings
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from apps.blocks.base import DEFAULT_PORT, Block, BlockConfig, BlockContext, BlockError, Result
from apps.blocks.expressions import TEMPLATE_PLACEHOLDER, ExpressionError, Template
from apps.connectors.types import connection_reference

from .blocks import NAME_PATTERN
from .openai_wire import ChatAnswer, ChatRequest, LLMCallError

INVALID = "invalid"
MASK = "••••••"


class ModelOptions(BlockConfig):
    """Which model answers, and how."""

    model: str = Field(
        default="",
        max_length=200,
        pattern=rf"({NAME_PATTERN})|^$",
        description="Registered language model (served by the model service)",
    )
    alias: str = Field(default="production", max_length=100, pattern=r"^[A-Za-z0-9_\-]*$")
    version: str = Field(default="", max_length=20, pattern=r"^[0-9]*$")
    connection: str | None = Field(
        default=None,
        description="An LLM provider connection, instead of a registered model",
        json_schema_extra=connection_reference("llm_openai"),
    )
    provider_model: str = Field(
        default="", max_length=200, description="The provider's model name (else its default)"
    )
    max_tokens: int = Field(default=256, ge=1, le=4096)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    stop: list[str] = Field(default_factory=list, max_length=4)
    retries: int = Field(
        default=2, ge=0, le=5, description="Times an answer that is not valid JSON is retried"
    )
    timeout_seconds: float = Field(
        default=30.0, gt=0, le=120, description="For the whole step, retries included"
    )

    @model_validator(mode="after")
    def _one_model(self) -> ModelOptions:
        if bool(self.model) == bool(self.connection):
            raise ValueError("set either a registered model or an LLM connection")
        if self.model and not (self.alias or self.version):
            raise ValueError("set an alias or a version")
        return self


class GenerateConfig(ModelOptions):
    prompt: Template = Field(min_length=1, max_length=20000, description="{{ }} fields allowed")
    system: Template = Field(default="", max_length=20000)
    json_schema: dict[str, Any] | None = Field(
        default=None, description="When set, the answer must be JSON matching this schema"
    )

    @field_validator("json_schema")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            import jsonschema

            try:
                jsonschema.validators.validator_for(value).check_schema(value)
            except jsonschema.SchemaError as error:
                raise ValueError(f"not a valid JSON Schema: {error.message}") from None
        return value


class ExtractField(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["string", "number", "integer", "boolean"] = "string"
    description: str = Field(default="", max_length=500)


class ClassifyConfig(ModelOptions):
    text: Template = Field(min_length=1, max_length=20000)
    labels: list[str] = Field(min_length=2, max_length=50)
    instructions: str = Field(default="", max_length=5000)


class ExtractConfig(ModelOptions):
    text: Template = Field(min_length=1, max_length=20000)
    fields: dict[str, ExtractField] = Field(min_length=1, max_length=50)
    instructions: str = Field(default="", max_length=5000)


class AIGenerateBlock(Block):
    """Generate text (or JSON matching a schema) with a language model."""

    key = "ai.generate"
    title = "AI generate"
    category = "model"
    icon = "sparkles"
    calls_out = True
    Config: ClassVar[type[BlockConfig]] = GenerateConfig
    ports = (DEFAULT_PORT, INVALID)
    max_attempts = 3
    # Above the config's largest timeout_seconds (120), which the block keeps itself.
    timeout_seconds = 125.0

    @classmethod
    def output_ports(cls, config: Any) -> tuple[str, ...]:
        return (DEFAULT_PORT, INVALID) if cls._schema(config) is not None else (DEFAULT_PORT,)

    @classmethod
    def _schema(cls, config: Any) -> dict[str, Any] | None:
        return getattr(config, "json_schema", None)

    def _prompt(self, config: Any) -> tuple[str, str]:
        """(system template, user template)."""
        return config.system, config.prompt

    def _output(self, config: Any, text: str, value: Any) -> dict[str, Any]:
        return {"text": text} if value is None else {"text": text, "json": value}

    def execute(self, ctx: BlockContext, config: Any, input: Any) -> Result:
        system_template, user_template = self._prompt(config)
        system, system_shown = _render(ctx, system_template)
        prompt, prompt_shown = _render(ctx, user_template)
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": prompt}
        ]
        schema = self._schema(config)
        gate = _provider_gate(ctx, config, self.key) if config.connection else None
        started = time.monotonic()
        answers, value, errors = _converse(ctx, config, messages, schema)
        last = answers[-1]
        meta = _meta(config, answers, started)
        if gate:
            meta["provider_policy"] = gate
        meta["prompt"] = prompt_shown
        if system:
            meta["system"] = system_shown
        if errors:
            meta["errors"] = errors
            return Result(output={"text": last.text, "errors": errors}, port=INVALID, meta=meta)
        return Result(output=self._output(config, last.text, value), meta=meta)


class AIClassifyBlock(AIGenerateBlock):
    """Label a text with one of the given labels, using a language model."""

    key = "ai.classify"
    title = "AI classify"
    icon = "tag"
    Config = ClassifyConfig

    @classmethod
    def _schema(cls, config: Any) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {"label": {"type": "string", "enum": list(config.labels)}},
            "required": ["label"],
        }

    lead = "Classify the text as one of"

    def _prompt(self, config: Any) -> tuple[str, str]:
        return _instructions(self.lead, config.labels, config.instructions), config.text

    def _output(self, config: Any, text: str, value: Any) -> dict[str, Any]:
        return {"label": value["label"], "text": text}


class AIExtractBlock(AIGenerateBlock):
    """Extract named fields from a text as JSON, using a language model."""

    key = "ai.extract"
    title = "AI extract"
    icon = "file-text"
    Config = ExtractConfig

    @classmethod
    def _schema(cls, config: Any) -> dict[str, Any]:
        properties = {
            name: {
                "type": field.type,
                **({"description": field.description} if field.description else {}),
            }
            for name, field in config.fields.items()
        }
        return {"type": "object", "properties": properties, "required": list(properties)}

    lead = "Extract these fields as JSON"

    def _prompt(self, config: Any) -> tuple[str, str]:
        return _instructions(self.lead, config.fields, config.instructions), config.text

    def _output(self, config: Any, text: str, value: Any) -> dict[str, Any]:
        return {"fields": value, "text": text}


def _instructions(lead: str, names: Any, extra: str) -> str:
    """The system prompt of the convenience forms. The builder's text is not a template,
    so a ``{{`` in it is broken up rather than evaluated."""
    return f"{lead}: {', '.join(names)}. {extra}".strip().replace("{{", "{ {")


def _render(ctx: BlockContext, template: str) -> tuple[str, str]:
    """(text sent to the model, text recorded): each ``{{ expression }}`` is filled in. In
    the recorded text a value is masked when any name in its expression is a field the
    workspace classifies as sensitive or looks like a credential (``trigger.body.email``,
    ``trigger.body["email"] + "!"``); an object or list is recorded with such keys masked."""
    if not template:
        return "", ""
    redaction = ctx.service("redaction")
    sent, shown, position = [], [], 0
    for match in TEMPLATE_PLACEHOLDER.finditer(template):
        expression = match.group(1).strip()
        try:
            value = ctx.evaluate(expression)
        except ExpressionError as error:
            raise BlockError(f"cannot fill the prompt: {error}") from None
        names = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", expression)
        if any(redaction.is_sensitive(name) for name in names):
            recorded = MASK
        else:
            recorded = _text(redaction.redact(value))
        sent += [template[position : match.start()], _text(value)]
        shown += [template[position : match.start()], recorded]
        position = match.end()
    sent.append(template[position:])
    shown.append(template[position:])
    return "".join(sent), "".join(shown)


def _text(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else json.dumps(value)


def _converse(
    ctx: BlockContext, config: Any, messages: list[dict[str, Any]], schema: dict[str, Any] | None
) -> tuple[list[ChatAnswer], Any, list[str]]:
    """Ask; with a schema, validate and retry with the error. Returns every answer, the
    parsed value (None without a schema) and the last validation errors (empty when
    valid)."""
    answers: list[ChatAnswer] = []
    errors: list[str] = []
    # timeout_seconds bounds the whole step, retries included.
    deadline = time.monotonic() + config.timeout_seconds
    for _ in range(1 + (config.retries if schema is not None else 0)):
        remaining = deadline - time.monotonic()
        if answers and remaining < 1.0:
            return answers, None, [*errors, "no time left to retry within timeout_seconds"]
        answer = _ask(ctx, config, messages, schema, timeout=remaining)
        answers.append(answer)
        if schema is None:
            return answers, None, []
        value, errors = _validated(answer.text, schema)
        if not errors:
            return answers, value, []
        messages = [
            *messages,
            {"role": "assistant", "content": answer.text},
            {
                "role": "user",
                "content": "That answer is not valid: "
                + "; ".join(errors)
                + ". Answer again with JSON only, matching the schema.",
            },
        ]
    return answers, None, errors


def _validated(text: str, schema: dict[str, Any]) -> tuple[Any, list[str]]:
    import jsonschema

    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        return None, [f"not JSON ({error.msg} at character {error.pos})"]
    validator = jsonschema.validators.validator_for(schema)(schema)
    problems = [
        f"{'/'.join(str(p) for p in e.absolute_path) or 'the answer'}: {e.message}"
        for e in validator.iter_errors(value)
    ]
    return value, problems[:5]


def _ask(
    ctx: BlockContext,
    config: Any,
    messages: list[dict[str, Any]],
    schema: dict[str, Any] | None,
    *,
    timeout: float,
    tools: list[dict[str, Any]] | None = None,
    parallel_tool_calls: bool | None = None,
) -> ChatAnswer:
    request = ChatRequest(
        messages=messages,
        max_tokens=config.max_tokens,
        temperature=config.temperature,
        stop=list(config.stop),
        json_schema=schema,
        timeout=timeout,
        route_key=str(ctx.run_id),
        tools=list(tools or ()),
        parallel_tool_calls=parallel_tool_calls,
    )
    try:
        if config.connection:
            return _provider(ctx, config, request)
        return ctx.service("models").chat(
            model=config.model,
            alias="" if config.version else config.alias,
            version=config.version,
            request=request,
        )
    except LLMCallError as error:
        raise BlockError(
            error.message,
            retryable=error.retryable,
            details={"model": config.model or config.provider_model, "status": error.status},
        ) from None


def _provider_gate(ctx: BlockContext, config: Any, block: str) -> dict[str, Any]:
    """Before run data leaves for an outside provider, the workspace's ``ai_provider``
    gate policy decides (the model service is in house and needs no gate). Denied: the
    step fails with the policy's reasons, never retried."""
    from urllib.parse import urlsplit

    connection = ctx.service("connections").get(config.connection, type="llm_openai")
    decision = ctx.service("policies").gate(
        gate="ai_provider",
        input={
            "provider": f"connection:{config.connection}",
            "outside": True,
            "host": urlsplit(connection.config.base_url).hostname or "",
            "model": config.provider_model or connection.config.default_model,
            "block": block,
            "node": ctx.node_id,
            "run": str(ctx.run_id),
        },
    )
    record = {"policy": decision.policy, "version": decision.version, "reasons": decision.reasons}
    if not decision.allow:
        raise BlockError(
            f"the ai_provider policy does not allow connection {config.connection!r}: "
            + "; ".join(decision.reasons),
            details=record,
        )
    return record


def _provider(ctx: BlockContext, config: Any, request: ChatRequest) -> ChatAnswer:
    from apps.core.http import egress_allowed

    from .providers import provider_chat

    connections = ctx.service("connections")
    connection = connections.get(config.connection, type="llm_openai")
    with egress_allowed(connections.egress_allowlist()):
        return provider_chat(connection, request, model=config.provider_model)


def token_cost(model: str, tokens: int) -> float:
    """Estimated cost of ``tokens`` tokens of ``model`` (settings ``LLM_TOKEN_COSTS``, per
    1,000 tokens by model name, else ``LLM_COST_PER_1K_TOKENS``)."""
    flowgate = settings.FLOWGATE
    per_1k = flowgate["LLM_TOKEN_COSTS"].get(model, flowgate["LLM_COST_PER_1K_TOKENS"])
    return round(float(per_1k) * tokens / 1000, 8)


def _meta(config: Any, answers: list[ChatAnswer], started: float) -> dict[str, Any]:
    last = answers[-1]
    prompt_tokens = sum(a.prompt_tokens for a in answers)
    completion_tokens = sum(a.completion_tokens for a in answers)
    return {
        "model": last.model,
        "model_version": last.version,
        "model_alias": last.alias,
        "provider": "flowgate-models"
        if not config.connection
        else f"connection:{config.connection}",
        "device": last.device,
        "finish_reason": last.finish_reason,
        "attempts": len(answers),
        # Not "*_tokens" keys: redaction masks any key that contains "token".
        "usage": {
            "prompt": prompt_tokens,
            "completion": completion_tokens,
            "total": prompt_tokens + completion_tokens,
        },
        "latency_ms": round((time.monotonic() - started) * 1000, 3),
        "cost": token_cost(last.model, prompt_tokens + completion_tokens),
    }


def register() -> None:
    from apps.blocks.registry import register_block

    register_block(AIGenerateBlock)
    register_block(AIClassifyBlock)
    register_block(AIExtractBlock)
