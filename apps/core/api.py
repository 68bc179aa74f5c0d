"""API conventions shared by every app: one error body shape, never a 500 for bad input."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import DatabaseError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Errors look like ``{"error": {"code": ..., "message": ..., "fields": {...}}}``."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or "Permission denied.")
    elif isinstance(exc, DatabaseError):
        return Response(
            {"error": {"code": "unavailable", "message": "The database is unavailable."}},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    detail = exc.detail
    body: dict[str, Any] = {"code": getattr(exc, "default_code", "error")}
    if isinstance(detail, dict):
        body["message"] = "Invalid input."
        body["fields"] = detail
        if isinstance(exc, exceptions.ValidationError):
            body["code"] = "invalid"
    elif isinstance(detail, list):
        body["message"] = "; ".join(str(item) for item in detail)
    else:
        body["message"] = str(detail)
        body["code"] = getattr(detail, "code", body["code"])
    response.data = {"error": body}
    return response
