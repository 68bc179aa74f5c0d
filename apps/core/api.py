"""API conventions shared by every app: one error body shape, never a 500 for bad input."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, DataError
from django.http import Http404
from rest_framework import exceptions, pagination, parsers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from . import jsonsafe


class Pagination(pagination.LimitOffsetPagination):
    """``?limit=`` beyond this is answered with this many, not a query for billions."""

    max_limit = 500


class JSONParser(parsers.JSONParser):
    """DRF's parser, refusing with a 400 what Postgres could not store (see ``jsonsafe``)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return jsonsafe.loads(stream.read())
        except jsonsafe.UnstorableJSON as error:
            raise exceptions.ParseError(f"JSON parse error - {error}.") from None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Errors look like ``{"error": {"code": ..., "message": ..., "fields": {...}}}``."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or "Permission denied.")
    elif isinstance(exc, DataError):
        # A value the checks let through and Postgres refused (too long, out of range).
        message = str(exc).splitlines()[0] if str(exc) else "a value cannot be stored"
        exc = exceptions.ValidationError({"detail": [f"A value cannot be stored: {message}."]})
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
