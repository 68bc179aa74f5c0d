"""Reads about connections. Every selector takes the workspace and sees only its objects."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.http import Http404

from apps.core.generation_cache import GenerationCache
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


# Each process keeps the allow-lists it read; a save moves the cache's generation once it
# commits (the signals connected in ``ConnectorsConfig.ready``), so every process reads the
# new list on its next call. Read from Postgres on every call it cost each HTTP step a
# query; read once a second (as before) it still cost an I/O thread a connection of its
# own each second, and the threads that found it stale together each opened one: up to
# 15 % of a worker's CPU at 300 call-out runs/s. ``max_age`` bounds how long a process may
# go by a list when a change could not reach Redis (with Redis down nothing is cached).
EGRESS_ALLOWLISTS = GenerationCache("egress-allowlists", max_age=10.0)


def egress_allowlist_get(*, workspace_id: Any) -> list[str]:
    """The workspace's own egress allow-list: a saved change applies to the calls that
    follow, in every process, without a restart."""
    allowlist: list[str] = EGRESS_ALLOWLISTS.get(
        str(workspace_id),
        lambda: list(egress_settings_get(workspace_id=workspace_id).allowlist),
    )
    return list(allowlist)
