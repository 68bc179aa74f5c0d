"""The block contract: what a block type is, what it may use, and what it returns.

A block type is one class in one module. It declares a permanent ``key``, a ``version``
(a change to its config or behaviour that could break a published flow is a new class
with the next version, the old one staying registered; see ``registry.py``),
palette metadata, a pydantic ``Config`` (which yields the JSON Schema the canvas, the
validator, the API docs and the CLI all read), its output ``ports``, and ``execute``.

Blocks never import the ORM. Everything they may touch comes through ``BlockContext``:
expression evaluation over the run's data, the SSRF-guarded HTTP client, and the services
other apps register (policies, models, approvals, connections).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

DEFAULT_PORT = "out"


class BlockError(Exception):
    """A step failed. ``retryable`` errors (timeouts, 5xx, refused connections) are retried
    with backoff; permanent ones (bad input, 4xx, denied) fail the step at once."""

    def __init__(
        self, message: str, *, retryable: bool = False, details: dict[str, Any] | None = None
    ):
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.details = details or {}


@dataclass(frozen=True)
class Wait:
    """Park the run here without holding a worker.

    ``kind`` names what is awaited (``approval``, ``delay``, ``callback``); ``reference``
    identifies it (an approval task id, say); ``deadline`` is when the engine resumes the
    step with ``{"timeout": True}`` if nothing else resumed it first; ``state`` is kept
    with the step and handed back to ``Block.resume``.
    """

    kind: str
    reference: str = ""
    deadline: datetime | None = None
    state: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Result:
    """What a step produced: ``output`` (JSON-serialisable), the ``port`` taken, and
    ``meta`` recorded with the step and the audit trail (model/policy versions, cost,
    reasons). A result with ``wait`` parks the run instead of continuing."""

    output: Any = None
    port: str = DEFAULT_PORT
    meta: dict[str, Any] = field(default_factory=dict)
    wait: Wait | None = None


@dataclass(frozen=True)
class FlowAddress:
    """What a trigger block may know of the flow it starts: its id and webhook token."""

    id: str
    webhook_token: str


@dataclass(frozen=True)
class Activation:
    """How a trigger block is started, written as a subscription row when its flow is
    published. ``kind`` names the listener that reads such rows (``webhook``: the webhook
    view, ``schedule``: the scheduler, ``stream``: the stream consumer); ``key`` is what the
    listener finds the flow by (the webhook token, the cron, the stream); ``settings`` is
    what it needs to start a run without parsing the flow."""

    kind: str
    key: str
    settings: dict[str, Any] = field(default_factory=dict)


class BlockConfig(BaseModel):
    """Base for every block's ``Config``: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class BlockContext(Protocol):
    """What a running block may use. Provided by the engine; fakes in block unit tests."""

    workspace_id: str
    run_id: str
    node_id: str
    attempt: int
    correlation_id: str
    idempotency_key: str  # stable per (run, node): send it with remote side effects
    dry_run: bool  # side-effecting blocks describe what they would do instead of doing it
    logger: logging.LoggerAdapter[logging.Logger]

    def evaluate(self, expression: str, extra: Mapping[str, Any] | None = None) -> Any:
        """Evaluate a CEL expression over ``trigger``, ``steps``, ``vars`` and ``env``
        (plus ``extra`` names, e.g. ``item`` in a loop)."""

    def evaluate_tree(self, value: Any, extra: Mapping[str, Any] | None = None) -> Any:
        """Evaluate every string leaf of a dict/list as CEL; other leaves pass through."""

    def render(self, template: str) -> str:
        """Fill ``{{ expression }}`` placeholders of a text template with CEL values."""

    def service(self, name: str) -> Any:
        """A service another app registered (``policies``, ``models``, ``approvals``,
        ``connections``, ``http``), bound to this run's workspace."""


class Block:
    """Base class of every block type. Subclasses set the class attributes and implement
    ``execute``; blocks that wait also implement ``resume``."""

    key: ClassVar[str]
    version: ClassVar[int] = 1
    title: ClassVar[str]
    category: ClassVar[str]  # trigger, connector, model, policy, logic, human, flow
    icon: ClassVar[str] = "box"
    Config: ClassVar[type[BlockConfig]] = BlockConfig
    ports: ClassVar[tuple[str, ...]] = (DEFAULT_PORT,)
    # Side-effecting blocks are stubbed in dry runs and checked for "in doubt" after a crash.
    side_effect: ClassVar[bool] = False
    # Idempotent side effects (those that send an Idempotency-Key the far end honours) may
    # be retried after a crash mid-call; others are flagged for a person instead.
    idempotent: ClassVar[bool] = True
    # Steps whose block may wait cannot run on the synchronous webhook fast path.
    may_wait: ClassVar[bool] = False
    # Blocks that wait on another service (an API, a database, the model service): before
    # one starts, a drain gives back the runs of its batch it has not started, so a slow
    # call holds up no other run.
    calls_out: ClassVar[bool] = False
    # Joins receive {source node: output} even when only one incoming path was taken.
    joins: ClassVar[bool] = False
    # Default retry policy; a node's config may override it.
    max_attempts: ClassVar[int] = 1
    timeout_seconds: ClassVar[float] = 30.0

    @classmethod
    def description(cls) -> str:
        return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""

    @classmethod
    def activation(cls, config: Any, flow: FlowAddress) -> Activation | None:
        """Trigger blocks: how a published flow starting with this block is activated.
        None (the default, and manual triggers) subscribes to nothing."""
        return None

    @classmethod
    def upgrade_config(cls, config: dict[str, Any]) -> dict[str, Any]:
        """This version's migration: a node config written for ``version - 1`` rewritten
        for this version. Versions that change the config schema override it; the editor's
        "upgrade this node" applies it (via ``registry.upgrade_config``)."""
        return config

    @classmethod
    def output_ports(cls, config: BlockConfig) -> tuple[str, ...]:
        """Ports for this configuration; blocks with configurable routes override it."""
        return cls.ports

    @classmethod
    def workspace_problems(
        cls, config: Any, service: Callable[[str], Any]
    ) -> list[tuple[str, str]]:
        """(field, message) for what is wrong with ``config`` in this workspace (a URL
        outside the connection it names). ``service(name)`` is ``ctx.service`` bound to the
        workspace. The flow validator calls it when it knows the workspace."""
        return []

    def execute(self, ctx: BlockContext, config: Any, input: Any) -> Result:
        raise BlockError(f"{self.key} cannot be executed", retryable=False)

    def resume(
        self, ctx: BlockContext, config: Any, wait: Wait, signal: Mapping[str, Any]
    ) -> Result:
        """Continue after a wait. ``signal`` is what ended the wait (a decision, or
        ``{"timeout": True}`` when the deadline passed). By default the signal's ``port``
        is taken and the signal becomes the output."""
        return Result(output=dict(signal), port=str(signal.get("port", DEFAULT_PORT)))
