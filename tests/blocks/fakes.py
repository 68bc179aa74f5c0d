"""A small BlockContext for block unit tests: CEL over a dict scope, services by name."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from apps.blocks import expressions


@dataclass
class FakeContext:
    scope: dict[str, Any] = field(default_factory=dict)
    services: dict[str, Any] = field(default_factory=dict)
    workspace_id: str = "workspace-1"
    run_id: str = "run-1"
    node_id: str = "node-1"
    attempt: int = 1
    correlation_id: str = "correlation-1"
    idempotency_key: str = "run-1:node-1"
    dry_run: bool = False
    logger: logging.LoggerAdapter = field(
        default_factory=lambda: logging.LoggerAdapter(logging.getLogger("tests.blocks"), {})
    )

    def evaluate(self, expression: str, extra: dict[str, Any] | None = None) -> Any:
        return expressions.evaluate(expression, {**self.scope, **(extra or {})})

    def evaluate_tree(self, value: Any, extra: dict[str, Any] | None = None) -> Any:
        return expressions.evaluate_tree(value, {**self.scope, **(extra or {})})

    def render(self, template: str) -> str:
        return expressions.render(template, self.scope)

    def service(self, name: str) -> Any:
        return self.services[name]
