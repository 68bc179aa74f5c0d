"""Entry points that belong to no domain: health probes and the error handlers."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.http import require_GET

from .health import readiness


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
