"""Readiness checks of the services the web process depends on."""

from __future__ import annotations

import redis
from django.conf import settings
from django.db import connection
from django.db.utils import OperationalError


def _database() -> dict[str, object]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True}
    except OperationalError as error:
        return {"ok": False, "error": str(error).splitlines()[0]}


def _redis() -> dict[str, object]:
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2).ping()
        return {"ok": True}
    except redis.RedisError as error:
        return {"ok": False, "error": str(error)}


def readiness() -> dict[str, dict[str, object]]:
    return {"database": _database(), "redis": _redis()}
