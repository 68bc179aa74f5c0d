"""The ``agent_calls`` service: the durable record of an ``ai.agent`` step's tool calls.

The agent block (``apps.mlmodels.agent``) never touches the ORM; through this service it
records each turn's tool calls before running any of them, then each call's policy
decision, review, child run and outcome. A step that is executed again (a crash, a
retry) reads the rows back: recorded turns are replayed instead of asking the model again,
finished calls give their recorded output, so no completed call is repeated.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.core.events import publish_run_event
from apps.flows.models import Flow, FlowVersion

from .models import AgentCall, Run

FIELDS = (
    "turn",
    "index",
    "key",
    "call_id",
    "tool",
    "kind",
    "target",
    "arguments",
    "status",
    "output",
    "error",
    "decision",
    "reviewer",
    "review_comment",
    "task_id",
    "child_run_id",
    "turn_meta",
)
UPDATABLE = frozenset(
    {"status", "output", "error", "decision", "reviewer", "review_comment", "task_id"}
    | {"child_run_id", "started_at", "finished_at"}
)
SAMPLE_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"))


def call_key(run_id: Any, node_id: str, turn: int, index: int) -> str:
    """The idempotency key of one tool call (what a block tool sends as its own)."""
    return hashlib.sha256(f"{run_id}:{node_id}:{turn}:{index}".encode()).hexdigest()[:32]


def as_dict(call: AgentCall) -> dict[str, Any]:
    return {name: getattr(call, name) for name in FIELDS}


class AgentCallService:
    def __init__(self, workspace_id: str):
        self.workspace_id = workspace_id

    def _run(self, run_id: Any) -> Run:
        return Run.objects.only("id").get(pk=run_id, workspace_id=self.workspace_id)

    def recorded(self, *, run_id: Any, node_id: str) -> list[dict[str, Any]]:
        """Every call the step recorded, in (turn, index) order."""
        return [
            as_dict(call)
            for call in AgentCall.objects.filter(run_id=run_id, node_id=node_id).order_by(
                "turn", "index"
            )
        ]

    def record_turn(
        self,
        *,
        run_id: Any,
        node_id: str,
        turn: int,
        calls: list[dict[str, Any]],
        turn_meta: dict[str, Any],
    ) -> list[dict[str, Any]]:
        """Record the calls of one model answer (``tool``, ``kind``, ``target``,
        ``call_id``, ``arguments`` each) before any runs. Recording a turn twice keeps the
        first record (what the step replays)."""
        run = self._run(run_id)
        with transaction.atomic():
            rows = [
                AgentCall.objects.get_or_create(
                    run=run,
                    node_id=node_id,
                    turn=turn,
                    index=index,
                    defaults={
                        "key": call_key(run_id, node_id, turn, index),
                        "call_id": str(call["call_id"])[:100],
                        "tool": call["tool"],
                        "kind": call["kind"],
                        "target": call["target"],
                        "arguments": call["arguments"],
                        "turn_meta": turn_meta,
                    },
                )[0]
                for index, call in enumerate(calls)
            ]
        self._event(run_id, node_id, "recorded")
        return [as_dict(row) for row in rows]

    def update(self, *, run_id: Any, node_id: str, turn: int, index: int, **fields: Any) -> None:
        unknown = set(fields) - UPDATABLE
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)} of an agent call")
        status = fields.get("status")
        if status == "running":
            fields.setdefault("started_at", timezone.now())
        elif status in ("succeeded", "failed", "denied"):
            fields.setdefault("finished_at", timezone.now())
        AgentCall.objects.filter(
            run_id=run_id,
            node_id=node_id,
            turn=turn,
            index=index,
            run__workspace_id=self.workspace_id,
        ).update(**fields)
        if status:
            self._event(run_id, node_id, str(status))

    def _event(self, run_id: Any, node_id: str, status: str) -> None:
        """Tell the run's page (it re-renders its calls table), once the change commits."""
        event = {"type": "run.agent_call", "run": str(run_id), "node": node_id, "status": status}
        transaction.on_commit(lambda: publish_run_event(self.workspace_id, run_id, event))

    def flow_tool(self, *, slug: str, version: int | None) -> dict[str, Any]:
        """What the agent needs to offer a published flow as a tool (``flow_tool_info``).
        Raises LookupError for a flow that is not published."""
        flow = Flow.objects.filter(workspace_id=self.workspace_id, slug=slug).first()
        if flow is None:
            raise LookupError(f"there is no flow {slug!r} in this workspace")
        found = (
            flow.versions.filter(number=version).first()
            if version is not None
            else flow.latest_version
        )
        if found is None:
            raise LookupError(
                f"flow {slug!r} has no published version"
                + (f" {version}" if version is not None else "")
            )
        return flow_tool_info(flow, found)


def flow_tool_info(flow: Flow, version: FlowVersion) -> dict[str, Any]:
    """A published flow as an agent's tool: its name, what it does, whether any of its
    steps has side effects, and an input schema derived from its trigger's sample input.
    The agent offers it so; the editor's tool picker shows and pre-fills the same."""
    from apps.blocks.registry import registry

    nodes = version.definition.get("nodes") or []
    blocks = [registry.get(str(node.get("type"))) for node in nodes]
    sample = next(
        (
            (node.get("config") or {}).get("sample") or {}
            for node, block in zip(nodes, blocks, strict=True)
            if block is not None and block.category == "trigger"
        ),
        {},
    )
    return {
        "slug": flow.slug,
        "name": flow.name,
        "version": version.number,
        "description": flow.description or flow.name,
        "side_effect": any(block is None or block.side_effect for block in blocks),
        "parameters": sample_schema(sample),
    }


def sample_schema(sample: Any) -> dict[str, Any]:
    """A JSON Schema for inputs shaped like ``sample`` (its top-level fields)."""
    properties: dict[str, Any] = {}
    for name, value in (sample if isinstance(sample, dict) else {}).items():
        kind = next((kind for cls, kind in SAMPLE_TYPES if isinstance(value, cls)), None)
        properties[str(name)] = {"type": kind} if kind else {}
    return {"type": "object", "properties": properties}
