"""Machine endpoints answer a database outage with a JSON 503, not an HTML 500 or a hang.

A webhook caller (or an API client) can retry a 503 with ``Retry-After``; an HTML error
page tells a machine nothing. How long a request may wait for Postgres is bounded by the
connection settings (``connect_timeout``, the pool's ``timeout``: studio/env.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger("flowgate.outage")
MACHINE_PATHS = ("/hooks/", "/api/")
RETRY_AFTER_SECONDS = 5
# Errors of reaching the database, not of a statement (those stay the view's to handle).
UNREACHABLE = (OperationalError, InterfaceError)


class DatabaseOutageMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, error: Exception) -> HttpResponse | None:
        if not isinstance(error, UNREACHABLE) or not request.path.startswith(MACHINE_PATHS):
            return None
        logger.warning("database unavailable for %s: %s", request.path, error)
        return unavailable()


def unavailable() -> JsonResponse:
    response = JsonResponse(
        {
            "error": {
                "code": "unavailable",
                "message": "the service cannot reach its database right now; retry later",
            }
        },
        status=503,
    )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
