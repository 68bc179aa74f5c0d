"""The ``subflows`` service: lets flow.subflow and logic.foreach start child runs.

Sub-flows nest at most ``FLOWGATE["SUBFLOW_MAX_DEPTH"]`` runs deep: publishing refuses the
cycles it can see (``flows.selectors.subflow_cycle``), and this limit stops the rest (a cycle
closed by publishing another flow later, or a very deep chain) with a clear failure.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from apps.flows.models import Flow

from .blocks import envelope
from .models import TERMINAL_RUN_STATUSES, Run, Trigger


class SubflowService:
    def __init__(self, workspace_id: str):
        self.workspace_id = workspace_id

    def start(
        self,
        *,
        flow_slug: str,
        body: Any,
        parent_run_id: str,
        node_id: str,
        index: int = 0,
        version: int | None = None,
        key: str = "",
    ) -> str:
        """Start a child run of ``flow_slug`` at published ``version`` (pinned by the
        caller), or at its latest published version when ``version`` is None. The child is
        started once per (parent run, node, ``index``), or per ``key`` when given (an
        agent's tool call)."""
        from apps.blocks.base import BlockError

        from .services import RunError, run_start

        flow = Flow.objects.filter(workspace_id=self.workspace_id, slug=flow_slug).first()
        if flow is None:
            raise BlockError(f"there is no flow {flow_slug!r} in this workspace")
        pinned = flow.versions.filter(number=version).first() if version is not None else None
        if version is not None and pinned is None:
            raise BlockError(f"{flow.name} has no published version {version}")
        parent = Run.objects.get(pk=parent_run_id)
        limit = int(settings.FLOWGATE.get("SUBFLOW_MAX_DEPTH", 8))
        chain = _ancestry(parent, limit)
        if len(chain) >= limit:
            path = " → ".join([*reversed(chain), flow_slug])
            raise BlockError(
                f"sub-flows nest deeper than the limit of {limit} runs ({path}): a flow that "
                "calls itself, directly or through others, is stopped here"
            )
        try:
            started = run_start(
                flow=flow,
                trigger=Trigger.SUBFLOW,
                version=pinned,
                payload=envelope(body),
                idempotency_key=f"{parent_run_id}:{node_id}:{key or index}",
                correlation_id=parent.correlation_id,
                parent=(parent, node_id),
                dry_run=parent.dry_run,
                actor=parent.requested_by,
            )
        except RunError as error:
            raise BlockError(str(error)) from None
        return str(started.run.id)

    def outcomes(self, run_ids: list[str]) -> list[dict[str, Any] | None]:
        runs = {
            str(run.id): run for run in Run.objects.filter(pk__in=run_ids).select_related("version")
        }
        versions = {key: run.version.number for key, run in runs.items() if run.version}
        return [
            {
                "run": run_id,
                "status": runs[run_id].status,
                "output": runs[run_id].output,
                "error": runs[run_id].error,
                "version": versions.get(run_id),
            }
            if run_id in runs and runs[run_id].status in TERMINAL_RUN_STATUSES
            else None
            for run_id in run_ids
        ]


def _ancestry(run: Run, limit: int) -> list[str]:
    """Slugs of the flows of ``run`` and its parents, nearest first, at most ``limit``."""
    chain = [run.flow.slug]
    parent_id = run.parent_run_id
    while parent_id is not None and len(chain) < limit:
        parent = (
            Run.objects.select_related("flow").only("parent_run_id", "flow__slug").get(pk=parent_id)
        )
        chain.append(parent.flow.slug)
        parent_id = parent.parent_run_id
    return chain
