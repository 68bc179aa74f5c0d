"""A node's own retry and timeout settings (``retry``, ``timeout_seconds`` in the flow
format): validated with the flow, applied by the engine over the block's defaults."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from .definition import Node


class NodeSettings(BaseModel):
    """A node's ``retry`` object and ``timeout_seconds`` in the flow definition."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(default=1, ge=1, le=20)
    backoff_seconds: float = Field(default=1.0, ge=0, le=3600)
    max_backoff_seconds: float = Field(default=300.0, ge=0, le=86400)
    timeout_seconds: float = Field(default=30.0, gt=0, le=3600)

    @classmethod
    def for_node(cls, node: Node) -> NodeSettings:
        values: dict[str, Any] = {
            "max_attempts": node.block.max_attempts,
            "timeout_seconds": node.block.timeout_seconds,
        }
        values.update(node.settings.get("retry") or {})
        if "timeout_seconds" in node.settings:
            values["timeout_seconds"] = node.settings["timeout_seconds"]
        return cls.model_validate(values)
