"""The ``BlockContext`` a step runs with: expressions over the run's data, services."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

from django.conf import settings

from apps.blocks import expressions
from apps.blocks.registry import registry

logger = logging.getLogger("flowgate.blocks")


def idempotency_key_for(run_id: Any, node_id: str) -> str:
    return hashlib.sha256(f"{run_id}:{node_id}".encode()).hexdigest()[:32]


class StepContext:
    """Implements ``apps.blocks.base.BlockContext`` for one step of one run."""

    def __init__(
        self,
        *,
        workspace_id: Any,
        run_id: Any,
        node_id: str,
        attempt: int,
        correlation_id: str,
        dry_run: bool,
        scope: dict[str, Any],
        services: dict[str, Any],
    ) -> None:
        self.workspace_id = str(workspace_id)
        self.run_id = str(run_id)
        self.node_id = node_id
        self.attempt = attempt
        self.correlation_id = correlation_id
        self.idempotency_key = idempotency_key_for(run_id, node_id)
        self.dry_run = dry_run
        self.scope = scope
        self._services = services
        self.logger = logging.LoggerAdapter(
            logger, {"run": self.run_id, "node": node_id, "correlation_id": correlation_id}
        )

    def evaluate(self, expression: str, extra: Mapping[str, Any] | None = None) -> Any:
        return expressions.evaluate(expression, {**self.scope, **extra} if extra else self.scope)

    def evaluate_tree(self, value: Any, extra: Mapping[str, Any] | None = None) -> Any:
        return expressions.evaluate_tree(value, {**self.scope, **extra} if extra else self.scope)

    def render(self, template: str) -> str:
        return expressions.render(template, self.scope)

    def service(self, name: str) -> Any:
        if name not in self._services:
            factory = registry.service_factory(name)
            if factory is None:
                raise LookupError(f"no service named {name!r} is registered")
            self._services[name] = factory(self.workspace_id)
        return self._services[name]


def expression_environment() -> dict[str, str]:
    """Environment variables that expressions may read as ``env.NAME`` (allow-listed)."""
    import os

    return {
        name: os.environ.get(name, "")
        for name in settings.FLOWGATE.get("EXPRESSION_ENV_ALLOWLIST", [])
    }
