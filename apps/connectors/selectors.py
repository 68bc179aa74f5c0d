"""Reads about connections. Every selector takes the workspace and sees only its objects."""

from __future__ import annotations

import time
from typing import Any

from django.db.models import Q, QuerySet
from django.http import Http404

from apps.flows.models import Flow, FlowStatus

from .models import Connection, EgressSettings


def connection_list(*, workspace: Any) -> QuerySet[Connection]:
    return Connection.objects.filter(workspace=workspace).order_by("name")


def connection_get(*, workspace: Any, connection_id: Any) -> Connection:
    """The workspace's connection ``connection_id``; Http404 for any other workspace's."""
    connection = Connection.objects.filter(workspace=workspace, pk=connection_id).first()
    if connection is None:
        raise Http404("No such connection.")
    return connection


def connection_usage(*, connection: Connection) -> list[Flow]:
    """Flows of the connection's workspace (not archived) whose draft or published
    version names it, each once."""
    flows = (
        Flow.objects.filter(workspace_id=connection.workspace_id)
        .exclude(status=FlowStatus.ARCHIVED)
        .select_related("latest_version")
    )
    # A cheap pre-filter in SQL; the exact match is on node configs below.
    flows = flows.filter(
        Q(draft_definition__icontains=connection.name)
        | Q(latest_version__definition__icontains=connection.name)
    )
    return [flow for flow in flows if _uses(flow, connection.name)]


def _uses(flow: Flow, name: str) -> bool:
    definitions = [flow.draft_definition]
    if flow.latest_version is not None:
        definitions.append(flow.latest_version.definition)
    return any(
        (node.get("config") or {}).get("connection") == name
        for definition in definitions
        for node in (definition or {}).get("nodes", [])
        if isinstance(node, dict)
    )


def egress_settings_get(*, workspace_id: Any) -> EgressSettings:
    """The workspace's egress settings; an empty allow-list until an admin saves one."""
    found = EgressSettings.objects.filter(workspace_id=workspace_id).first()
    return found or EgressSettings(workspace_id=workspace_id)


# How old an allow-list a call may go by. Read on every call, it cost each HTTP step a
# query, and on an I/O thread a connection of its own held for the whole call (hundreds in
# flight exhausted Postgres's connections). A save forgets this process's copy at once
# (``egress_allowlist_forget``); other processes see it within this time.
EGRESS_ALLOWLIST_FRESH_SECONDS = 1.0
_allowlists: dict[str, tuple[float, list[str]]] = {}


def egress_allowlist_get(*, workspace_id: Any) -> list[str]:
    """The workspace's own egress allow-list, at most ``EGRESS_ALLOWLIST_FRESH_SECONDS``
    old: a change applies to the calls that follow without a restart."""
    key, now = str(workspace_id), time.monotonic()
    cached = _allowlists.get(key)
    if cached is not None and now - cached[0] < EGRESS_ALLOWLIST_FRESH_SECONDS:
        return list(cached[1])
    allowlist = list(egress_settings_get(workspace_id=workspace_id).allowlist)
    _allowlists[key] = (now, allowlist)
    return list(allowlist)


def egress_allowlist_forget(*, workspace_id: Any) -> None:
    _allowlists.pop(str(workspace_id), None)
