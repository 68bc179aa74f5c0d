"""Entry points that belong to no domain: the home redirect and health probes."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.views import defaults
from django.views.decorators.http import require_GET

from apps.accounts.permissions import Capability, can
from apps.accounts.selectors import membership_get, membership_list

from .health import readiness

GUIDE = settings.BASE_DIR / "docs" / "authoring.md"


@lru_cache(maxsize=1)
def _guide_html() -> str:
    """docs/authoring.md as HTML. The file is ours, not user data; raw HTML in it is off."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table").render(GUIDE.read_text())


@login_required
def authoring_guide(request: HttpRequest) -> HttpResponse:
    """The authoring guide (docs/authoring.md), linked from the editor's toolbar."""
    return render(request, "core/guide.html", {"guide": mark_safe(_guide_html())})  # noqa: S308


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send the user to the workspace they picked, else their first, else explain."""
    picked = request.GET.get("workspace")
    if picked:
        membership = membership_get(user=request.user, workspace_slug=picked)  # type: ignore[arg-type]
        return _landing(membership)
    first = membership_list(user=request.user).first()  # type: ignore[arg-type]
    if first is None:
        return render(request, "core/no_workspace.html", status=403)
    return _landing(first)


@login_required
def workspace_home(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    return _landing(membership_get(user=request.user, workspace_slug=workspace_slug))  # type: ignore[arg-type]


def _landing(membership: Any) -> HttpResponse:
    """Where a member starts: builders and admins at their flows, reviewers at their inbox."""
    slug = membership.workspace.slug
    if not can(membership, Capability.EDIT_FLOWS) and can(membership, Capability.DECIDE_TASKS):
        return redirect("inbox:list", workspace_slug=slug)
    return redirect("flows:list", workspace_slug=slug)


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> HttpResponse:
    checks = readiness()
    ready = all(check["ok"] for check in checks.values())
    return JsonResponse({"ready": ready, "checks": checks}, status=200 if ready else 503)


# --- errors outside any view: the API answers them in its own JSON shape ---------------
def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def _api_error(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 400 (a body over the size limit, a malformed request) as JSON under /api/."""
    if not _is_api(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return _api_error("too_large", f"The body is over {limit} bytes.", 413)
    return _api_error("bad_request", "The request is malformed.", 400)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Under /api/, a path that matches nothing (a malformed id, say) is a JSON 404."""
    if _is_api(request):
        return _api_error("not_found", "No such resource.", 404)
    return defaults.page_not_found(request, exception)
