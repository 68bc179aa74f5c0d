"""transform.set: build an object from expressions."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ..base import Block, BlockConfig, BlockContext, Result
from ..expressions import Expression


class SetConfig(BlockConfig):
    values: dict[str, Expression] = Field(
        description="Each key becomes a field of the output, set to its expression's value.",
        min_length=1,
    )


class SetBlock(Block):
    """Build an object from expressions over the trigger and earlier steps."""

    key = "transform.set"
    title = "Set fields"
    category = "logic"
    icon = "pencil"
    Config = SetConfig

    def execute(self, ctx: BlockContext, config: SetConfig, input: Any) -> Result:
        return Result(output=ctx.evaluate_tree(dict(config.values)))
