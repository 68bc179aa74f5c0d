"""Branching, switching and joining paths."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..base import Block, BlockConfig, BlockContext, BlockError, Result
from ..expressions import Expression

PORT_NAME = r"^[a-z][a-z0-9_]{0,39}$"


class BranchConfig(BlockConfig):
    condition: Expression = Field(description="A CEL expression that is true or false.")


class BranchBlock(Block):
    """If/else: take the 'true' or 'false' path depending on a condition."""

    key = "logic.branch"
    title = "If / else"
    category = "logic"
    icon = "split"
    Config = BranchConfig
    ports = ("true", "false")

    def execute(self, ctx: BlockContext, config: BranchConfig, input: Any) -> Result:
        value = ctx.evaluate(config.condition)
        if not isinstance(value, bool):
            raise BlockError(
                f"the condition {config.condition!r} gave {value!r}, not true or false"
            )
        return Result(output=input, port="true" if value else "false")


class SwitchCase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    port: str = Field(
        pattern=PORT_NAME, description="Name of the path taken when this case matches."
    )
    condition: Expression


class SwitchConfig(BlockConfig):
    cases: list[SwitchCase] = Field(min_length=1, max_length=30)

    @field_validator("cases")
    @classmethod
    def ports_are_unique(cls, cases: list[SwitchCase]) -> list[SwitchCase]:
        names = [case.port for case in cases]
        if len(set(names)) != len(names) or "default" in names:
            raise ValueError("case ports must be unique and not 'default'")
        return cases


class SwitchBlock(Block):
    """Take the path of the first case whose condition is true, else 'default'."""

    key = "logic.switch"
    title = "Switch"
    category = "logic"
    icon = "route"
    Config = SwitchConfig
    ports = ("default",)

    @classmethod
    def output_ports(cls, config: BlockConfig) -> tuple[str, ...]:
        cases = config.cases if isinstance(config, SwitchConfig) else []
        return (*(case.port for case in cases), "default")

    def execute(self, ctx: BlockContext, config: SwitchConfig, input: Any) -> Result:
        for case in config.cases:
            if ctx.evaluate(case.condition) is True:
                return Result(output=input, port=case.port)
        return Result(output=input, port="default")


class MergeConfig(BlockConfig):
    pass


class MergeBlock(Block):
    """Join parallel paths: waits for every incoming path, outputs each one's result."""

    key = "logic.merge"
    title = "Merge"
    category = "logic"
    icon = "merge"
    Config = MergeConfig
    joins = True

    def execute(self, ctx: BlockContext, config: MergeConfig, input: Any) -> Result:
        # The engine runs a node once all its incoming paths are decided and passes a
        # {source node: output} mapping of the paths that were taken.
        return Result(output=input)
