"""Reads for flows, always scoped to the caller's workspace."""

from __future__ import annotations

from typing import Any

from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.http import Http404

from .models import Flow, FlowStatus, FlowVersion, PublishRequest, PublishRequestStatus


def flow_list(
    *, workspace: Any, search: str = "", include_archived: bool = False
) -> QuerySet[Flow]:
    from apps.runs.models import Run

    latest_run = Run.objects.filter(flow=OuterRef("pk")).order_by("-created_at")
    flows = (
        Flow.objects.filter(workspace=workspace)
        .select_related("latest_version")
        .annotate(
            last_run_id=Subquery(latest_run.values("id")[:1]),
            last_run_status=Subquery(latest_run.values("status")[:1]),
            last_run_at=Subquery(latest_run.values("created_at")[:1]),
        )
    )
    if not include_archived:
        flows = flows.exclude(status=FlowStatus.ARCHIVED)
    if search:
        flows = flows.filter(name__icontains=search)
    return flows.order_by("-updated_at")


def flows_using(*, workspace: Any, block_type: str, config: dict[str, Any]) -> QuerySet[Flow]:
    """Flows whose draft or published version has a ``block_type`` node whose config
    includes ``config`` (e.g. the policy.evaluate nodes naming one policy)."""
    wanted = [{"type": block_type, "config": config}]
    return (
        Flow.objects.filter(workspace=workspace)
        .exclude(status=FlowStatus.ARCHIVED)
        .filter(
            Q(draft_definition__nodes__contains=wanted)
            | Q(latest_version__definition__nodes__contains=wanted)
        )
        .select_related("latest_version")
        .order_by("name")
    )


def flow_get(*, workspace: Any, flow_id: Any) -> Flow:
    flow = (
        Flow.objects.select_related("latest_version")
        .filter(workspace=workspace, pk=flow_id)
        .first()
    )
    if flow is None:
        raise Http404("No such flow.")
    return flow


def flow_get_by_slug(*, workspace: Any, slug: str) -> Flow:
    flow = (
        Flow.objects.select_related("latest_version").filter(workspace=workspace, slug=slug).first()
    )
    if flow is None:
        raise Http404(f"No flow {slug!r}.")
    return flow


def flow_version_list(*, flow: Flow) -> QuerySet[FlowVersion]:
    return flow.versions.select_related("published_by").order_by("-number")


def flow_version_get(*, flow: Flow, number: int) -> FlowVersion:
    version = flow.versions.select_related("published_by").filter(number=number).first()
    if version is None:
        raise Http404(f"No version {number}.")
    return version


def flow_definition_at(*, flow: Flow, reference: str) -> dict[str, Any]:
    """``reference`` is a version number or ``draft``."""
    if reference == "draft":
        return flow.draft_definition
    try:
        number = int(reference)
    except ValueError:
        raise Http404(f"{reference!r} is neither a version number nor 'draft'.") from None
    return flow_version_get(flow=flow, number=number).definition


def flow_webhook_secret(flow: Flow) -> str:
    """The flow's webhook signing secret in clear ("" when none was generated yet)."""
    from apps.connectors.crypto import decrypt_secrets

    if not flow.webhook_signing_secret:
        return ""
    return str(decrypt_secrets(flow.webhook_signing_secret).get("signing_secret", ""))


SUBFLOW_BLOCKS = ("flow.subflow", "logic.foreach")
AGENT_BLOCK = "ai.agent"  # its tools may be published flows, run as sub-flows


def flows_called_by(block_type: Any, config: Any) -> list[str]:
    """Slugs of the flows one node runs: a sub-flow or for-each node's ``flow``, an
    agent's flow tools."""
    if not isinstance(config, dict):
        return []
    if block_type in SUBFLOW_BLOCKS and config.get("flow"):
        return [str(config["flow"])]
    if block_type == AGENT_BLOCK and isinstance(config.get("tools"), list):
        return [
            str(tool["flow"])
            for tool in config["tools"]
            if isinstance(tool, dict) and tool.get("flow")
        ]
    return []


def subflows_called(definition: Any) -> set[str]:
    """Slugs of the flows that ``definition``'s sub-flow, for-each and agent nodes run
    (nothing for a definition too malformed to say; its problems are reported elsewhere)."""
    nodes = definition.get("nodes") if isinstance(definition, dict) else None
    called: set[str] = set()
    for node in nodes if isinstance(nodes, list) else []:
        if isinstance(node, dict):
            called.update(flows_called_by(node.get("type"), node.get("config")))
    return called


def subflow_cycle(*, workspace_id: Any, slug: str, definition: dict[str, Any]) -> list[str] | None:
    """The chain of sub-flow calls that leads from ``definition`` (about to be published as
    flow ``slug``) back to ``slug`` through the other flows' published versions, or None."""
    path_to: dict[str, list[str]] = {slug: [slug]}
    pending = [(slug, definition)]
    while pending:
        current, current_definition = pending.pop()
        for called in sorted(subflows_called(current_definition)):
            if called == slug:
                return [*path_to[current], called]
            if called in path_to:
                continue
            path_to[called] = [*path_to[current], called]
            flow = (
                Flow.objects.filter(workspace_id=workspace_id, slug=called)
                .select_related("latest_version")
                .first()
            )
            if flow is not None and flow.latest_version is not None:
                pending.append((called, flow.latest_version.definition))
    return None


def pending_publish_requests(*, workspace: Any) -> list[PublishRequest]:
    """Requests waiting for an admin, oldest first (shown at the top of their inbox)."""
    return list(
        PublishRequest.objects.filter(workspace=workspace, status=PublishRequestStatus.PENDING)
        .select_related("flow", "requested_by")
        .order_by("created_at")
    )
