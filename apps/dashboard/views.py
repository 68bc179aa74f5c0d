"""The dashboard page (one workspace) and the Prometheus endpoint (every workspace)."""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from apps.accounts.decorators import WorkspaceRequest, workspace_view
from apps.accounts.permissions import Capability, can

from . import rollups, selectors, services
from .forms import RangeForm, SloTargetsForm
from .metrics import exposition

RANGE_LABELS = {"today": "Today", "1h": "1 hour", "24h": "24 hours", "7d": "7 days"}


@workspace_view(Capability.VIEW_RUNS)
def dashboard_view(request: WorkspaceRequest) -> HttpResponse:
    """The dashboard page, or (htmx) its panels; an unknown range shows today. The charts
    draw from the JSON API (``DashboardApi``) in the browser."""
    workspace = request.workspace
    form = RangeForm(request.GET)
    range_name = form.range_name() if form.is_valid() else "today"
    rollups.materialise(wait=False)  # what a person reads is counted (the task runs every 2 s)
    context = {
        "figures": selectors.dashboard_figures(workspace=workspace, range_name=range_name),
        "range": range_name,
        "ranges": RANGE_LABELS.items(),
        "bucket_minutes": selectors.BUCKET_MINUTES[range_name],
        "recent_failures": selectors.recent_failures(workspace=workspace),
        "can_manage_settings": can(request.membership, Capability.MANAGE_SETTINGS),
    }
    if request.htmx:
        return render(request, "dashboard/partials/panels.html", context)
    return render(request, "dashboard/index.html", context)


@workspace_view(Capability.MANAGE_SETTINGS)
def slo_targets_view(request: WorkspaceRequest) -> HttpResponse:
    """Dashboard → SLO targets (admins): saved and audited, or 400 with the field errors."""
    workspace = request.workspace
    current = selectors.slo_targets_get(workspace=workspace)
    form = SloTargetsForm(request.POST or None, instance=current)
    if request.method == "POST":
        if form.is_valid():
            services.slo_targets_save(
                workspace=workspace, actor=request.user, targets=form.cleaned_data
            )
            messages.success(request, "SLO targets saved.")
            return redirect("dashboard:list", workspace_slug=workspace.slug)
        return render(request, "dashboard/slo.html", {"form": form, "current": current}, status=400)
    return render(request, "dashboard/slo.html", {"form": form, "current": current})


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
    rollups.materialise(wait=False)
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
