"""Fixed-window rate limits kept in Redis, shared by every web process.

A limit is "<requests>/<seconds>" (``FLOWGATE["RATE_LIMITS"]``, one per scope: ``api`` per
token or user, ``webhook`` per flow, ``preview`` per user); "0/<seconds>" or an empty value
switches a scope off. When Redis cannot be reached, or the client fails in any other way,
requests pass (and it is logged, once per failed call): a limit protects capacity, it is
not an authorisation check, and a machine endpoint never answers a 500 page for it.
"""

from __future__ import annotations

import logging
import time

import redis
from django.conf import settings
from rest_framework.throttling import BaseThrottle

from .redis_clients import redis_client

logger = logging.getLogger(__name__)


def parse_limit(text: str) -> tuple[int, int] | None:
    """``"120/60"`` → (120, 60); None when the scope is switched off."""
    if not text:
        return None
    count, _, seconds = text.partition("/")
    limit, window = int(count), int(seconds or 60)
    if limit <= 0 or window <= 0:
        return None
    return limit, window


def limit_for(scope: str) -> tuple[int, int] | None:
    return parse_limit(str(settings.FLOWGATE.get("RATE_LIMITS", {}).get(scope, "")))


def hit(*, scope: str, key: str) -> int | None:
    """Count one request of ``key`` in ``scope``. Returns None when it may go ahead, else
    the seconds until the window ends (the ``Retry-After``)."""
    return hits(scope=scope, keys=[key])[0]


def hit_and_read(
    *, scope: str, key: str, names: list[str]
) -> tuple[int | None, list[bytes | None] | None]:
    """``hit``, and the values of the Redis keys ``names`` read in the same round trip
    (None when Redis cannot be reached: the request goes ahead)."""
    bounds = limit_for(scope)
    if bounds is None and not names:
        return None, []
    now = time.time()
    try:
        pipeline = redis_client().pipeline(transaction=False)
        if bounds is not None:
            name = f"flowgate:ratelimit:{scope}:{key}:{int(now // bounds[1])}"
            pipeline.incr(name)
            pipeline.expire(name, bounds[1] + 1)
        if names:
            pipeline.mget(names)
        answers = pipeline.execute()
    except Exception as error:  # fail open, see the module's text
        _not_enforced(scope, error)
        return None, None
    values = list(answers[-1]) if names else []
    if bounds is None or int(answers[0]) <= bounds[0]:
        return None, values
    window = bounds[1]
    return max(1, int((int(now // window) + 1) * window - now + 0.999)), values


def hits(*, scope: str, keys: list[str]) -> list[int | None]:
    """``hit`` for each of ``keys`` (one request each, repeats allowed), in one round trip."""
    bounds = limit_for(scope)
    if bounds is None or not keys:
        return [None] * len(keys)
    limit, window = bounds
    now = time.time()
    slot = int(now // window)
    try:
        pipeline = redis_client().pipeline(transaction=False)
        for key in keys:
            name = f"flowgate:ratelimit:{scope}:{key}:{slot}"
            pipeline.incr(name)
            pipeline.expire(name, window + 1)
        counts = [int(count) for count in pipeline.execute()[::2]]
    except Exception as error:  # fail open, see the module's text
        _not_enforced(scope, error)
        return [None] * len(keys)
    retry_after = max(1, int((slot + 1) * window - now + 0.999))
    return [None if count <= limit else retry_after for count in counts]


def _not_enforced(scope: str, error: Exception) -> None:
    """Log a failed rate-limit call: a Redis error in a line, anything else (a fault in
    the client) with its traceback."""
    if isinstance(error, redis.RedisError):
        logger.warning("rate limit %s not enforced: %s", scope, error)
    else:
        logger.exception("rate limit %s not enforced: unexpected Redis client error", scope)


class RedisRateThrottle(BaseThrottle):
    """DRF throttle over ``hit``: the client is the API token, else the signed-in user,
    else the address. DRF answers 429 with ``Retry-After`` from ``wait()``."""

    scope = "api"

    def allow_request(self, request, view):
        self.retry_after = hit(scope=self.scope, key=self.client_key(request))
        return self.retry_after is None

    @staticmethod
    def client_key(request) -> str:
        token_id = getattr(request.auth, "pk", None)
        if token_id is not None:
            return f"token:{token_id}"
        if request.user is not None and request.user.is_authenticated:
            return f"user:{request.user.pk}"
        return f"address:{request.META.get('REMOTE_ADDR', '')}"

    def wait(self) -> float | None:
        return float(self.retry_after) if self.retry_after is not None else None


class PreviewRateThrottle(RedisRateThrottle):
    """The expression preview, per user: each call may hold a worker process for the
    expression budget."""

    scope = "preview"

    @staticmethod
    def client_key(request) -> str:
        user = getattr(request.user, "pk", None)
        return f"user:{user}" if user is not None else RedisRateThrottle.client_key(request)
