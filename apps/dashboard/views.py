"""The dashboard page (one workspace) and the Prometheus endpoint (every workspace)."""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from apps.accounts.decorators import workspace_view
from apps.accounts.permissions import Capability

from . import charts, selectors
from .metrics import exposition


@workspace_view(Capability.VIEW_RUNS)
def dashboard_view(request: HttpRequest) -> HttpResponse:
    workspace = request.workspace  # type: ignore[attr-defined]
    range_name = request.GET.get("range", "today")
    if range_name not in ("today", *selectors.RANGES):
        range_name = "today"
    since = selectors.range_start(range_name)
    minutes = selectors.BUCKET_MINUTES[range_name]
    by_status = selectors.runs_by_status(workspace=workspace, since=since)
    finished = by_status["succeeded"] + by_status["failed"]
    latency = selectors.step_latency_by_block(workspace=workspace, since=since)
    context = {
        "range": range_name,
        "ranges": [("today", "Today"), ("1h", "1 hour"), ("24h", "24 hours"), ("7d", "7 days")],
        "by_status": by_status,
        "total": sum(by_status.values()),
        "failure_rate": by_status["failed"] / finished if finished else None,
        "latency": latency,
        "p95_overall": max((row["p95"] for row in latency), default=None),
        "waiting": selectors.waiting_steps(workspace=workspace),
        "queue_lag": selectors.queue_lag_seconds(workspace=workspace),
        "backlog": selectors.review_backlog(workspace=workspace),
        "recent_failures": selectors.recent_failures(workspace=workspace),
        "runs_chart": charts.runs_over_time_chart(
            selectors.runs_over_time(workspace=workspace, since=since, minutes=minutes),
            since=since,
            minutes=minutes,
        ),
        "latency_chart": charts.latency_chart(latency),
    }
    context["waiting_total"] = sum(context["waiting"].values())
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, "dashboard/partials/panels.html", context)
    return render(request, "dashboard/index.html", context)


def _metrics_allowed(request: HttpRequest) -> bool:
    token = settings.FLOWGATE["METRICS_TOKEN"]
    if token:
        header = request.headers.get("Authorization", "")
        return hmac.compare_digest(header.encode(), f"Bearer {token}".encode())
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(
        address in ipaddress.ip_network(network, strict=False)
        for network in settings.FLOWGATE["METRICS_ALLOWED_NETWORKS"]
    )


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus scrape endpoint: with ``METRICS_TOKEN`` set, it needs ``Authorization:
    Bearer <token>``; without, only ``METRICS_ALLOWED_NETWORKS`` (loopback by default)
    may read it. Anyone else gets a 404, as if it did not exist."""
    if not _metrics_allowed(request):
        raise Http404()
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
