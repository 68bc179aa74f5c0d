"""Reads for runs, scoped to the caller's workspace."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from apps.blocks.registry import registry

from .engine.effects import DECISION_CATEGORIES
from .models import AgentCall, Run, RunStatus, StepRun, StepStatus


def run_list(
    *,
    workspace: Any,
    flow_id: Any = None,
    status: str | None = None,
    trigger: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[Run]:
    runs = Run.objects.filter(workspace=workspace).select_related("flow", "version")
    if flow_id:
        runs = runs.filter(flow_id=flow_id)
    if status:
        runs = runs.filter(status=status)
    if trigger:
        runs = runs.filter(trigger=trigger)
    if since:
        runs = runs.filter(created_at__gte=since)
    if until:
        runs = runs.filter(created_at__lt=until)
    return runs.order_by("-created_at")


def dead_letter_list(*, workspace: Any) -> QuerySet[Run]:
    return run_list(workspace=workspace, status=RunStatus.FAILED)


def run_get(*, workspace: Any, run_id: Any) -> Run:
    run = (
        Run.objects.select_related("flow", "version").filter(workspace=workspace, pk=run_id).first()
    )
    if run is None:
        raise Http404("No such run.")
    return run


def run_steps(*, run: Run) -> dict[str, list[StepRun]]:
    """Every attempt in order, and the latest attempt per node in execution order."""
    attempts = list(StepRun.objects.filter(run=run).order_by("id"))
    latest: dict[str, StepRun] = {}  # insertion order = order each node first ran
    for step in attempts:
        if step.node_id not in latest or step.attempt >= latest[step.node_id].attempt:
            latest[step.node_id] = step
    return {"all": attempts, "latest": list(latest.values())}


def run_step_rows(*, run: Run) -> list[dict[str, Any]]:
    """One row per node for the run page, in execution order: the latest attempt, every
    attempt, the block's category, whether it made a decision, and its timeline bar."""
    steps = run_steps(run=run)
    attempts_by_node: dict[str, list[StepRun]] = {}
    for attempt in steps["all"]:
        attempts_by_node.setdefault(attempt.node_id, []).append(attempt)
    timeline = step_timeline(steps["latest"])
    calls = agent_calls_by_node(run=run)
    rows = []
    for step in steps["latest"]:
        block = registry.get(step.block_type, step.block_version)
        category = block.category if block else ""
        rows.append(
            {
                "step": step,
                "category": category,
                "attempts": attempts_by_node[step.node_id],
                "is_decision": category in DECISION_CATEGORIES
                and step.status == StepStatus.SUCCEEDED,
                "bar": timeline.get(step.pk),
                "calls": calls.get(step.node_id, []),
            }
        )
    return rows


def agent_calls_by_node(*, run: Run) -> dict[str, list[AgentCall]]:
    """The tool calls of the run's ``ai.agent`` steps, per node, in (turn, index) order."""
    by_node: dict[str, list[AgentCall]] = {}
    for call in AgentCall.objects.filter(run=run).order_by("node_id", "turn", "index"):
        by_node.setdefault(call.node_id, []).append(call)
    return by_node


def step_timeline(steps: list[StepRun]) -> dict[Any, dict[str, float]]:
    """Where each step's bar sits on the run's timeline, in percent of the span from the
    first step's start to the last step's end (a waiting step extends to now)."""
    now = timezone.now()
    spans = {
        step.pk: (step.started_at, step.finished_at or now)
        for step in steps
        if step.started_at is not None
    }
    if not spans:
        return {}
    first = min(start for start, _ in spans.values())
    total = max((end - first).total_seconds() for _, end in spans.values()) or 1e-9
    return {
        key: {
            "offset": round((start - first).total_seconds() / total * 100, 2),
            # At least a sliver, so an instant step is still visible.
            "width": max(round((end - start).total_seconds() / total * 100, 2), 0.5),
        }
        for key, (start, end) in spans.items()
    }


def run_related(*, run: Run) -> dict[str, Any]:
    """The runs linked to ``run``: what it re-ran, its re-runs, its parent and sub-flows."""
    linked = Run.objects.filter(workspace_id=run.workspace_id).select_related("flow", "version")
    return {
        "rerun_of": linked.filter(pk=run.rerun_of_id).first() if run.rerun_of_id else None,
        "reruns": list(linked.filter(rerun_of=run).order_by("created_at")),
        "parent": linked.filter(pk=run.parent_run_id).first() if run.parent_run_id else None,
        "children": list(linked.filter(parent_run=run).order_by("created_at")),
    }


def run_result(run: Run) -> Any:
    """What the caller of a finished run gets back: the body ``flow.respond`` set, else the
    output of the run's last succeeded step."""
    response = run.response if isinstance(run.response, dict) else {}
    return response.get("body", run.output)
