"""Fixed-window rate limits kept in Redis, shared by every web process.

A limit is "<requests>/<seconds>" (``FLOWGATE["RATE_LIMITS"]``, one per scope: ``api`` per
token or user, ``webhook`` per flow, ``preview`` per user); "0/<seconds>" or an empty value
switches a scope off. When Redis cannot be reached, or the client fails in any other way,
requests pass (and it is logged, once per failed call): a limit protects capacity, it is
not an authorisation check, and a machine endpoint never answers a 500 page for it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

import redis
from django.conf import settings
from rest_framework.throttling import BaseThrottle

from .redis_clients import redis_client

logger = logging.getLogger(__name__)
# Where windows are read from; a test of a limit pins it inside one window, since a burst
# that crosses a window's end starts counting again (what a fixed window means).
clock = time.time


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


# A repeat of a request the caller marked as the same one (a webhook delivery's idempotency
# key): the first of each mark in a window is counted, the next FREE_REPEATS are not (they
# are answered with the first one's result), any further ones are, so a flood of one key
# still meets the limit.
FREE_REPEATS = 5
_COUNT_ONCE = """
local seen = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[1])
if seen > 1 and seen <= 1 + tonumber(ARGV[2]) then
  return tonumber(redis.call('GET', KEYS[1]) or '0')
end
local count = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return count
"""


def hit(*, scope: str, key: str) -> int | None:
    """Count one request of ``key`` in ``scope``. Returns None when it may go ahead, else
    the seconds until the window ends (the ``Retry-After``)."""
    return hits(scope=scope, keys=[key])[0]


def hit_and_read(
    *, scope: str, key: str, names: list[str], once: str | None = None, count: bool = True
) -> tuple[int | None, list[bytes | None] | None]:
    """``hit``, and the values of the Redis keys ``names`` read in the same round trip
    (None when Redis cannot be reached: the request goes ahead). ``once``: the request's
    idempotency key, if any (a repeat is not counted again, see FREE_REPEATS); ``count``
    False: only read (the request was counted already)."""
    retry_afters, values = hits_and_read(
        scope=scope, keys=[key] if count else [], onces=[once] if count else None, names=names
    )
    return (retry_afters[0] if count else None), values


def hits(*, scope: str, keys: list[str], onces: list[str | None] | None = None) -> list[int | None]:
    """``hit`` for each of ``keys`` (one request each, repeats allowed), in one round trip;
    ``onces``: each request's idempotency key or None, as ``hit_and_read``'s ``once``."""
    return hits_and_read(scope=scope, keys=keys, onces=onces, names=[])[0]


def hits_and_read(
    *, scope: str, keys: list[str], onces: list[str | None] | None, names: list[str]
) -> tuple[list[int | None], list[bytes | None] | None]:
    """``hits``, and the values of the Redis keys ``names``, in one round trip (values None
    when Redis cannot be reached: every request goes ahead)."""
    bounds = limit_for(scope) if keys else None
    if bounds is None and not names:
        return [None] * len(keys), []
    now = clock()
    slot = int(now // bounds[1]) if bounds is not None else 0
    try:
        pipeline = redis_client().pipeline(transaction=False)
        firsts = []  # where each request's count is among the answers
        if bounds is not None:
            for key, once in zip(keys, onces or [None] * len(keys), strict=True):
                firsts.append(len(pipeline))
                _queue_count(pipeline, scope, key, once, slot, bounds[1])
        if names:
            pipeline.mget(names)
        answers = pipeline.execute()
    except Exception as error:  # fail open, see the module's text
        _not_enforced(scope, error)
        return [None] * len(keys), None
    values = list(answers[-1]) if names else []
    if bounds is None:
        return [None] * len(keys), values
    limit, window = bounds
    retry_after = max(1, int((slot + 1) * window - now + 0.999))
    return [None if int(answers[first]) <= limit else retry_after for first in firsts], values


def _queue_count(
    pipeline: Any, scope: str, key: str, once: str | None, slot: int, window: int
) -> None:
    """Queue the count of one request; its first answer is the window's count."""
    name = f"flowgate:ratelimit:{scope}:{key}:{slot}"
    if not once:
        pipeline.incr(name)
        pipeline.expire(name, window + 1)
        return
    seen = f"{name}:once:{hashlib.sha256(once.encode()).hexdigest()}"
    pipeline.eval(_COUNT_ONCE, 2, name, seen, window + 1, FREE_REPEATS)


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
