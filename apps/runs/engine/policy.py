"""Per-step execution policy: timeouts, retries, exponential backoff with jitter."""

from __future__ import annotations

import random
from typing import Any

from django.conf import settings
from pydantic import BaseModel, ConfigDict, Field

from apps.flows.definition import Node


class StepTimeout(Exception):
    """The step ran past its timeout. Transient: it is retried if attempts remain."""

    retryable = True

    def __init__(self, seconds: float):
        super().__init__(f"the step did not finish within {seconds:g} s")
        self.message = str(self)


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


def backoff_seconds(retry_number: int, settings: NodeSettings) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random, so retries of many
    runs that failed together do not hit the far end together again."""
    ceiling = min(
        settings.max_backoff_seconds, settings.backoff_seconds * 2 ** max(retry_number - 1, 0)
    )
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 — jitter, not security


def engine_setting(name: str) -> Any:
    """One of the engine's ``FLOWGATE`` settings (read each time: tests change them)."""
    flowgate: dict[str, Any] = settings.FLOWGATE
    return flowgate[name]
