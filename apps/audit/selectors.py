"""Reads of the audit trail, always scoped to one workspace."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.http import Http404

from .models import AuditEvent, DataSettings


def audit_event_list(
    *,
    workspace: Any,
    actor: str = "",
    action: str = "",
    object_ref: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEvent]:
    """Events newest first. ``actor`` matches the actor's label or username (substring),
    ``action`` an action or its prefix (``decision`` matches ``decision.policy``),
    ``object_ref`` an object type or id (exact)."""
    events = AuditEvent.objects.filter(workspace=workspace).select_related("actor")
    if actor:
        events = events.filter(
            Q(actor_label__icontains=actor) | Q(actor__username__icontains=actor)
        )
    if action:
        events = events.filter(Q(action=action) | Q(action__startswith=f"{action}."))
    if object_ref:
        events = events.filter(Q(object_type=object_ref) | Q(object_id=object_ref))
    if since:
        events = events.filter(created_at__gte=since)
    if until:
        events = events.filter(created_at__lt=until)
    return events.order_by("-appended")


def audit_action_list(*, workspace: Any) -> list[str]:
    """The distinct actions recorded in the workspace, for the filter's choices."""
    return list(
        AuditEvent.objects.filter(workspace=workspace)
        .order_by("action")
        .values_list("action", flat=True)
        .distinct()
    )


def decisions_of_run(*, workspace: Any, run_id: Any) -> list[AuditEvent]:
    """The run's decision records in the order they were taken (one per deciding step)."""
    return list(
        AuditEvent.objects.filter(
            workspace=workspace,
            object_type="run",
            object_id=str(run_id),
            action__startswith="decision.",
        ).order_by("appended")
    )


def decision_get(*, workspace: Any, run_id: Any, node_id: str) -> AuditEvent:
    """The latest decision record the engine wrote for ``node_id`` of the run (404 if
    none: the step was not a decision, did not succeed, or belongs to another workspace)."""
    event = (
        AuditEvent.objects.filter(
            workspace=workspace,
            object_type="run",
            object_id=str(run_id),
            action__startswith="decision.",
            data__node=node_id,
        )
        .select_related("actor")
        .order_by("-appended")
        .first()
    )
    if event is None:
        raise Http404("No decision was recorded for this step.")
    return event


def data_settings_get(*, workspace_id: Any) -> DataSettings:
    """The workspace's data settings; the defaults (nothing classified, 90 days) until an
    admin saves them."""
    found = DataSettings.objects.filter(workspace_id=workspace_id).first()
    return found or DataSettings(workspace_id=workspace_id)


def last_purge_get(*, workspace_id: Any) -> AuditEvent | None:
    """The latest retention purge recorded in the workspace (``runs.purged``), if any."""
    return (
        AuditEvent.objects.filter(workspace_id=workspace_id, action="runs.purged")
        .order_by("-appended")
        .first()
    )
