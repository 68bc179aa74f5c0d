"""Flow control: delays, responses to the caller, sub-flows and loops."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar, Literal

from django.utils import timezone
from pydantic import Field, field_validator, model_validator

from ..base import Block, BlockConfig, BlockContext, BlockError, Result, Wait
from ..expression_sandbox import shared_budget
from ..expressions import Expression

MAX_FOREACH_ITEMS = 1000
SUBFLOW_POLL = timedelta(seconds=15)  # safety net if a child's completion signal is missed


MAX_DELAY_SECONDS = 90 * 24 * 3600
DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")
UNITS = (("d", 86400), ("h", 3600), ("m", 60))


class DelayConfigV1(BlockConfig):
    seconds: float = Field(gt=0, le=MAX_DELAY_SECONDS, description="How long to wait.")


class DelayBlockV1(Block):
    """Wait for a while without holding a worker, then continue."""

    key = "util.delay"
    title = "Delay"
    category = "flow"
    icon = "clock"
    Config: ClassVar[type[BlockConfig]] = DelayConfigV1
    may_wait = True

    def execute(self, ctx: BlockContext, config: Any, input: Any) -> Result:
        deadline = timezone.now() + timedelta(seconds=self.seconds(config))
        return Result(wait=Wait(kind="delay", deadline=deadline, state={"input": input}))

    def resume(
        self, ctx: BlockContext, config: Any, wait: Wait, signal: Mapping[str, Any]
    ) -> Result:
        return Result(output=wait.state.get("input"))

    @staticmethod
    def seconds(config: Any) -> float:
        return float(config.seconds)


def duration_seconds(text: str) -> float:
    """``"1h30m"`` → 5400.0; a ValueError names what is wrong."""
    match = DURATION.match(text.strip())
    if not text.strip() or match is None:
        raise ValueError(f"{text!r} is not a duration such as '90s', '15m', '2h' or '1d12h'")
    days, hours, minutes, seconds = (float(part or 0) for part in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def duration_text(seconds: float) -> str:
    """The shortest duration text for ``seconds`` (5400 → ``"1h30m"``)."""
    if seconds != int(seconds):
        return f"{seconds:g}s"
    rest, parts = int(seconds), []
    for unit, size in UNITS:
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts) + (f"{rest}s" if rest or not parts else "")


class DelayConfig(BlockConfig):
    duration: str = Field(
        description="How long to wait: '90s', '15m', '2h', '3d' or a mix such as '1d12h'.",
        examples=["15m", "2h", "1d12h"],
    )

    @field_validator("duration")
    @classmethod
    def duration_is_valid(cls, value: str) -> str:
        seconds = duration_seconds(value)
        if not 0 < seconds <= MAX_DELAY_SECONDS:
            raise ValueError("a delay is longer than 0 seconds and at most 90 days")
        return value


class DelayBlock(DelayBlockV1):
    """Wait for a while without holding a worker, then continue.

    Version 2 reads the wait as a duration ('2h', '1d12h') instead of a number of seconds,
    so a three-day wait is not written as 259200."""

    version = 2
    Config = DelayConfig

    @classmethod
    def upgrade_config(cls, config: dict[str, Any]) -> dict[str, Any]:
        upgraded = {key: value for key, value in config.items() if key != "seconds"}
        if "seconds" in config:
            upgraded["duration"] = duration_text(float(config["seconds"]))
        return upgraded

    @staticmethod
    def seconds(config: Any) -> float:
        return duration_seconds(config.duration)


class RespondConfig(BlockConfig):
    status: int = Field(default=200, ge=200, le=599, description="HTTP status for the caller.")
    body: dict[str, Expression] | Expression = Field(
        description="The response body: an object of expressions, or one expression."
    )
    headers: dict[str, str] = Field(default_factory=dict)


class RespondBlock(Block):
    """Set the response a synchronous webhook caller receives."""

    key = "flow.respond"
    title = "Respond"
    category = "flow"
    icon = "reply"
    Config = RespondConfig

    def execute(self, ctx: BlockContext, config: RespondConfig, input: Any) -> Result:
        body = ctx.evaluate_tree(config.body)
        response = {"status": config.status, "body": body, "headers": dict(config.headers)}
        return Result(output=response, meta={"response": response})


PIN_DESCRIPTION = "Run this published version of the flow; empty follows its latest version."


class SubflowConfig(BlockConfig):
    flow: str = Field(description="Slug of the published flow to run.")
    version: int | None = Field(default=None, ge=1, description=PIN_DESCRIPTION)
    input: dict[str, Expression] = Field(
        default_factory=dict, description="The sub-flow's trigger body."
    )


class SubflowBlock(Block):
    """Run another published flow and continue with its result."""

    key = "flow.subflow"
    title = "Sub-flow"
    category = "flow"
    icon = "layers"
    Config = SubflowConfig
    ports = ("out", "error")
    may_wait = True

    def execute(self, ctx: BlockContext, config: SubflowConfig, input: Any) -> Result:
        body = ctx.evaluate_tree(dict(config.input))
        child = ctx.service("subflows").start(
            flow_slug=config.flow,
            version=config.version,
            body=body,
            parent_run_id=ctx.run_id,
            node_id=ctx.node_id,
        )
        return Result(
            wait=Wait(
                kind="subflow",
                reference=child,
                deadline=timezone.now() + SUBFLOW_POLL,
                state={"children": [child]},
            )
        )

    def resume(
        self, ctx: BlockContext, config: SubflowConfig, wait: Wait, signal: Mapping[str, Any]
    ) -> Result:
        outcomes = ctx.service("subflows").outcomes(wait.state["children"])
        if any(outcome is None for outcome in outcomes):
            return Result(
                wait=Wait(
                    kind="subflow",
                    reference=wait.reference,
                    deadline=timezone.now() + SUBFLOW_POLL,
                    state=wait.state,
                )
            )
        outcome = outcomes[0]
        if outcome["status"] != "succeeded":
            return Result(output={"error": outcome["error"], "run": outcome["run"]}, port="error")
        meta = {"subflow_run": outcome["run"], "subflow_version": outcome["version"]}
        return Result(output=outcome["output"], meta=meta)


class ForeachConfig(BlockConfig):
    items: Expression = Field(description="A list to loop over, e.g. trigger.body.lines.")
    map: dict[str, Expression] | None = Field(
        default=None, description="Per item (as `item`, `index`): fields computed inline."
    )
    flow: str | None = Field(
        default=None, description="Per item: run this published flow with the item as body."
    )
    flow_version: int | None = Field(default=None, ge=1, description=PIN_DESCRIPTION)
    max_items: int = Field(default=100, ge=1, le=MAX_FOREACH_ITEMS)
    on_too_many: Literal["fail", "truncate"] = "fail"

    @model_validator(mode="after")
    def one_body(self) -> ForeachConfig:
        if (self.map is None) == (self.flow is None):
            raise ValueError("set either 'map' (inline fields) or 'flow' (a sub-flow per item)")
        return self


class ForeachBlock(Block):
    """Loop over a list: compute fields per item, or run a sub-flow per item."""

    key = "logic.foreach"
    title = "For each"
    category = "logic"
    icon = "repeat"
    Config = ForeachConfig
    ports = ("out", "error")
    may_wait = True

    def execute(self, ctx: BlockContext, config: ForeachConfig, input: Any) -> Result:
        items = self._items(ctx, config)
        if config.map is not None:
            with shared_budget():  # one expression budget for the whole loop, not per item
                results = [
                    ctx.evaluate_tree(dict(config.map), {"item": item, "index": index})
                    for index, item in enumerate(items)
                ]
            return Result(output={"items": results, "count": len(results)})
        subflows = ctx.service("subflows")
        children = [
            subflows.start(
                flow_slug=config.flow,
                version=config.flow_version,
                body=item,
                parent_run_id=ctx.run_id,
                node_id=ctx.node_id,
                index=index,
            )
            for index, item in enumerate(items)
        ]
        return Result(
            wait=Wait(
                kind="foreach",
                reference=f"{len(children)} runs",
                deadline=timezone.now() + SUBFLOW_POLL,
                state={"children": children},
            )
        )

    def resume(
        self, ctx: BlockContext, config: ForeachConfig, wait: Wait, signal: Mapping[str, Any]
    ) -> Result:
        outcomes = ctx.service("subflows").outcomes(wait.state["children"])
        if any(outcome is None for outcome in outcomes):
            return Result(
                wait=Wait(
                    kind="foreach",
                    reference=wait.reference,
                    deadline=timezone.now() + SUBFLOW_POLL,
                    state=wait.state,
                )
            )
        failed = [outcome for outcome in outcomes if outcome["status"] != "succeeded"]
        output = {
            "items": [outcome["output"] for outcome in outcomes],
            "count": len(outcomes),
            "failed": len(failed),
        }
        return Result(output=output, port="error" if failed else "out")

    @staticmethod
    def _items(ctx: BlockContext, config: ForeachConfig) -> list[Any]:
        items = ctx.evaluate(config.items)
        if not isinstance(items, list):
            raise BlockError(f"{config.items!r} gave {type(items).__name__}, not a list")
        if len(items) > config.max_items:
            if config.on_too_many == "fail":
                raise BlockError(f"{len(items)} items is more than the limit of {config.max_items}")
            items = items[: config.max_items]
        return items
