"""Flow control: delays, responses to the caller, sub-flows and loops."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal

from django.utils import timezone
from pydantic import Field, model_validator

from ..base import Block, BlockConfig, BlockContext, BlockError, Result, Wait
from ..expression_sandbox import shared_budget
from ..expressions import Expression

MAX_FOREACH_ITEMS = 1000
SUBFLOW_POLL = timedelta(seconds=15)  # safety net if a child's completion signal is missed


class DelayConfig(BlockConfig):
    seconds: float = Field(gt=0, le=90 * 24 * 3600, description="How long to wait.")


class DelayBlock(Block):
    """Wait for a while without holding a worker, then continue."""

    key = "util.delay"
    title = "Delay"
    category = "flow"
    icon = "clock"
    Config = DelayConfig
    may_wait = True

    def execute(self, ctx: BlockContext, config: DelayConfig, input: Any) -> Result:
        deadline = timezone.now() + timedelta(seconds=config.seconds)
        return Result(wait=Wait(kind="delay", deadline=deadline, state={"input": input}))

    def resume(
        self, ctx: BlockContext, config: DelayConfig, wait: Wait, signal: Mapping[str, Any]
    ) -> Result:
        return Result(output=wait.state.get("input"))


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


class SubflowConfig(BlockConfig):
    flow: str = Field(description="Slug of the published flow to run.")
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
            flow_slug=config.flow, body=body, parent_run_id=ctx.run_id, node_id=ctx.node_id
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
        return Result(output=outcome["output"], meta={"subflow_run": outcome["run"]})


class ForeachConfig(BlockConfig):
    items: Expression = Field(description="A list to loop over, e.g. trigger.body.lines.")
    map: dict[str, Expression] | None = Field(
        default=None, description="Per item (as `item`, `index`): fields computed inline."
    )
    flow: str | None = Field(
        default=None, description="Per item: run this published flow with the item as body."
    )
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
