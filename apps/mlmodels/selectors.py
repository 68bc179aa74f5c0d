"""Reads for the models pages that come from Flowgate's own tables."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from apps.flows.models import Flow


def flows_using_models(*, workspace: Any) -> dict[str, list[Flow]]:
    """Model name → the workspace's flows whose draft has a ``model.predict`` step on it."""
    using: dict[str, list[Flow]] = defaultdict(list)
    flows = Flow.objects.filter(
        workspace=workspace, draft_definition__nodes__contains=[{"type": "model.predict"}]
    ).order_by("name")
    for flow in flows:
        names = {
            str((node.get("config") or {}).get("model", ""))
            for node in flow.draft_definition.get("nodes", [])
            if isinstance(node, dict) and node.get("type") == "model.predict"
        }
        for name in names - {""}:
            using[name].append(flow)
    return dict(using)
