"""Entry points that belong to no domain: the home redirect and health probes."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from apps.accounts.selectors import membership_get, membership_list

from .health import readiness


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send the user to the workspace they picked, else their first, else explain."""
    picked = request.GET.get("workspace")
    if picked:
        membership = membership_get(user=request.user, workspace_slug=picked)  # type: ignore[arg-type]
        return redirect("flows:list", workspace_slug=membership.workspace.slug)
    first = membership_list(user=request.user).first()  # type: ignore[arg-type]
    if first is None:
        return render(request, "core/no_workspace.html", status=403)
    return redirect("flows:list", workspace_slug=first.workspace.slug)


@login_required
def workspace_home(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    membership_get(user=request.user, workspace_slug=workspace_slug)  # type: ignore[arg-type]
    return redirect("flows:list", workspace_slug=workspace_slug)


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> HttpResponse:
    checks = readiness()
    ready = all(check["ok"] for check in checks.values())
    return JsonResponse({"ready": ready, "checks": checks}, status=200 if ready else 503)
