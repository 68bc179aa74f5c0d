"""Reads for the models pages that come from Flowgate's own tables."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from apps.flows.models import Flow, FlowStatus

from .models import PromotionRequest, PromotionStatus


def flows_using_models(*, workspace: Any) -> dict[str, list[Flow]]:
    """Model name → the workspace's flows (not archived: an archived flow and its
    replacement would read as one flow listed twice) whose draft has a ``model.predict``
    step on it, each once however many steps name the model."""
    using: dict[str, list[Flow]] = defaultdict(list)
    flows = (
        Flow.objects.filter(
            workspace=workspace, draft_definition__nodes__contains=[{"type": "model.predict"}]
        )
        .exclude(status=FlowStatus.ARCHIVED)
        .order_by("name")
    )
    for flow in flows:
        names = {
            str((node.get("config") or {}).get("model", ""))
            for node in flow.draft_definition.get("nodes", [])
            if isinstance(node, dict) and node.get("type") == "model.predict"
        }
        for name in names - {""}:
            using[name].append(flow)
    return dict(using)


def promotion_requests(
    *, workspace: Any, model_name: str | None = None, pending_only: bool = False
) -> QuerySet[PromotionRequest]:
    """The workspace's promotion requests, newest first (pending ones first when mixed)."""
    requests = PromotionRequest.objects.filter(workspace=workspace).select_related(
        "requested_by", "decided_by"
    )
    if model_name is not None:
        requests = requests.filter(model_name=model_name)
    if pending_only:
        requests = requests.filter(status=PromotionStatus.PENDING)
    return requests.order_by("-created_at")


def promotion_get(*, workspace: Any, promotion_id: Any) -> PromotionRequest:
    """Raises Http404 for another workspace's request or an unknown id."""
    return get_object_or_404(
        PromotionRequest.objects.select_related("requested_by", "decided_by"),
        pk=promotion_id,
        workspace=workspace,
    )


def agent_tool_catalog(*, workspace: Any) -> dict[str, list[dict[str, Any]]]:
    """What an ``ai.agent`` may call in ``workspace``, as the editor's tool picker offers
    it: the published, not archived flows (``flow_tool_info``: name, description, side
    effects, input schema from the trigger's sample) and every action block that may be a
    tool (key, title, description, side effects, and the parameters the model fills when
    the builder fixes none of its settings)."""
    from apps.blocks.registry import registry
    from apps.runs.agent_calls import flow_tool_info

    from .agent import derived_parameters, may_be_tool

    flows = (
        Flow.objects.filter(workspace=workspace, latest_version__isnull=False)
        .exclude(status=FlowStatus.ARCHIVED)
        .select_related("latest_version")
        .order_by("name")
    )
    blocks = sorted(
        (block for block in registry.all() if may_be_tool(block)),
        key=lambda block: (block.category, block.title),
    )
    return {
        "flows": [
            flow_tool_info(flow, flow.latest_version)
            for flow in flows
            if flow.latest_version is not None
        ],
        "blocks": [
            {
                "key": block.key,
                "title": block.title,
                "category": block.category,
                "description": block.description(),
                "side_effect": block.side_effect,
                "parameters": derived_parameters(block.key, {}),
            }
            for block in blocks
        ],
    }
