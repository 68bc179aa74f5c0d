"""Subscription rows: how each published flow is started, written from its trigger block's
``activation`` when the flow is published, archived or restored.

A trigger kind is a plug-in: its block declares ``activation()`` and the listener for its
``kind`` reads ``TriggerSubscription`` rows (the webhook view, the scheduler, the stream
consumer). Nothing here knows the kinds.
"""

from __future__ import annotations

from typing import Any

from apps.blocks.base import Activation, FlowAddress
from apps.core.generation_cache import GenerationCache

from .definition import FlowGraph
from .models import Flow, FlowStatus, TriggerSubscription


def flow_activation(
    definition: dict[str, Any], *, flow_id: Any, webhook_token: str
) -> tuple[str, Activation | None]:
    """(trigger block key, its activation) for a valid ``definition``."""
    graph = FlowGraph.parse(definition)
    trigger = graph.nodes[graph.trigger]
    address = FlowAddress(id=str(flow_id), webhook_token=webhook_token)
    return trigger.block.key, trigger.block.activation(trigger.config, address)


def subscriptions_sync(*, flow: Flow) -> TriggerSubscription | None:
    """Make ``flow``'s subscription row match its latest published version (none while it
    is archived, unpublished, or started by hand only)."""
    version = flow.latest_version
    if version is None or flow.status == FlowStatus.ARCHIVED:
        TriggerSubscription.objects.filter(flow=flow).delete()
        return None
    block, activation = flow_activation(
        version.definition, flow_id=flow.id, webhook_token=flow.webhook_token
    )
    if activation is None:
        TriggerSubscription.objects.filter(flow=flow).delete()
        return None
    subscription, _ = TriggerSubscription.objects.update_or_create(
        flow=flow,
        defaults={
            "workspace_id": flow.workspace_id,
            "version": version,
            "block": block,
            "kind": activation.kind,
            "key": activation.key,
            "settings": activation.settings,
        },
    )
    return subscription


def subscriptions_of(kind: str) -> list[TriggerSubscription]:
    """Every row of one kind, with its flow and version (one query)."""
    return list(
        TriggerSubscription.objects.filter(kind=kind)
        .select_related("flow", "version")
        .order_by("id")
    )


# The subscriptions at each (kind, key), with flow, workspace and version, kept by each
# process and dropped in every process once a change to a subscription or a flow commits
# (the signals connected in ``FlowsConfig.ready``): a webhook delivery reads a generation
# in Redis instead of the joined rows. The rows are shared by the process's threads: read
# them, never change them.
SUBSCRIPTIONS = GenerationCache("subscriptions")


def subscription_for(kind: str, key: str) -> TriggerSubscription | None:
    return subscriptions_for(kind, {key}).get(key)


def subscription_last_read(kind: str, key: str) -> TriggerSubscription | None:
    """The row this process last read at (kind, key), however old (None if none): a hint
    for routing a request, never a grant (``subscription_for`` reads the current row)."""
    found: TriggerSubscription | None = SUBSCRIPTIONS.peek((kind, key))
    return found


def subscriptions_for(kind: str, keys: set[str]) -> dict[str, TriggerSubscription]:
    """The rows of ``kind`` listening at ``keys``, by key, with flow, workspace and version
    (from this process's cache, else one query; the flows' drafts are not read)."""

    def load(missing: list[Any]) -> dict[Any, TriggerSubscription]:
        rows = (
            TriggerSubscription.objects.filter(kind=kind, key__in=[key for _, key in missing])
            .select_related("flow__workspace", "version")
            .defer("flow__draft_definition")
        )
        return {(kind, row.key): row for row in rows}

    found = SUBSCRIPTIONS.get_many([(kind, key) for key in sorted(keys)], load)
    return {key: row for (_, key), row in found.items() if row is not None}
