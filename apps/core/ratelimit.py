"""Sliding-window rate limits kept in Redis, shared by every web process.

A limit is "<requests>/<seconds>" (``FLOWGATE["RATE_LIMITS"]``, one per scope: ``api`` per
token or user, ``webhook`` per flow, ``preview`` per user); "0/<seconds>" or an empty value
switches a scope off. Requests are counted in fixed windows of that length, and a request's
count is the current window's plus the previous window's weighted by the part of it still
inside the last <seconds> (``previous * (1 - elapsed / window) + current``): a burst sent
across a window's end meets the limit as it would inside one window (counted in fixed
windows alone it could pass twice the limit within a second). A refused request is not
counted, and its ``Retry-After`` is the time until one more request would go ahead. When
Redis cannot be reached, or the client fails in any other way, requests pass (and it is
logged, once per failed call): a limit protects capacity, it is not an authorisation check,
and a machine endpoint never answers a 500 page for it.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from typing import Any

import redis
from django.conf import settings
from rest_framework.throttling import BaseThrottle

from .redis_clients import redis_client

logger = logging.getLogger(__name__)
# Where the time is read from (a test pins it either side of a window's end).
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
# key): the first of each mark is counted, the next FREE_REPEATS within a window's length of
# it are not (they are answered with the first one's result), any further ones are, so a
# flood of one key still meets the limit. The mark is kept from the first request, not per
# fixed window, so a repeat just after a window's end is not counted as a new request.
FREE_REPEATS = 5

# Counts a batch of requests in one call. KEYS: for each request its window's count, the
# previous window's count, and its mark when it has one. ARGV: the previous window's weight,
# the limit (plus _ROUNDING), how long a count and a mark are kept, FREE_REPEATS, then per
# request how many KEYS it has (2 or 3). Only a request that goes ahead is counted: counting refused ones
# too, a caller sending steadily at 90% of the limit, once refused, stayed refused (each
# refusal held the weighted count up). Answers, per request: went ahead (1 or 0), the
# previous window's count, this window's count.
_COUNT = """
local weight, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local free_repeats = tonumber(ARGV[5])
local answers = {}
local at = 1
for i = 6, #ARGV do
  local current, previous = KEYS[at], KEYS[at + 1]
  local mark = ARGV[i] == '3' and KEYS[at + 2] or nil
  at = at + tonumber(ARGV[i])
  local before = tonumber(redis.call('GET', previous) or '0')
  local count = tonumber(redis.call('GET', current) or '0')
  local seen = mark and tonumber(redis.call('GET', mark) or '0') or 0
  local ahead = 0
  if seen >= 1 and seen <= free_repeats then
    redis.call('INCR', mark)
    ahead = 1
  elseif before * weight + count + 1 <= limit then
    count = redis.call('INCR', current)
    redis.call('EXPIRE', current, ARGV[3])
    if mark and seen == 0 then
      redis.call('SET', mark, 1, 'EX', ARGV[4])
    end
    ahead = 1
  end
  answers[#answers + 1] = ahead
  answers[#answers + 1] = before
  answers[#answers + 1] = count
end
return answers
"""


def hit(*, scope: str, key: str) -> int | None:
    """Count one request of ``key`` in ``scope``. Returns None when it may go ahead, else
    the seconds until a request would go ahead again (the ``Retry-After``)."""
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
    try:
        pipeline = redis_client().pipeline(transaction=False)
        if bounds is not None:
            _queue_counts(pipeline, scope, keys, onces or [None] * len(keys), now, *bounds)
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
    elapsed = now % window
    counted = [int(answer) for answer in answers[0]]
    return [
        None if ahead else retry_after(limit, window, elapsed, previous=before, current=count)
        for ahead, before, count in zip(counted[::3], counted[1::3], counted[2::3], strict=True)
    ], values


# Allowed for a float's last digit, so a request sent at its Retry-After is not refused.
_ROUNDING = 1e-9


def retry_after(limit: int, window: int, elapsed: float, *, previous: int, current: int) -> int:
    """The seconds until a request refused ``elapsed`` seconds into its window, with
    ``previous`` and ``current`` requests counted in the window before and in this one,
    would go ahead (when no other request comes first), at least 1."""
    # When f of a window has gone by: in this one once `previous * (1 - f) + current + 1 <=
    # limit` (previous > 0 there, or the request would have gone ahead), else in the next
    # one once `current * (1 - f) + 1 <= limit`.
    room = limit - current - 1
    gone = 1 - room / previous if room >= 0 else 2 - (limit - 1) / current
    return max(1, math.ceil(window * gone - elapsed - _ROUNDING))


def _queue_counts(
    pipeline: Any,
    scope: str,
    keys: list[str],
    onces: list[str | None],
    now: float,
    limit: int,
    window: int,
) -> None:
    """Queue the count of each request of ``keys`` (one call, see _COUNT). A window's count
    is kept through the next window, which weighs it."""
    slot = int(now // window)
    names: list[str] = []
    sizes: list[int] = []
    for key, once in zip(keys, onces, strict=True):
        base = f"flowgate:ratelimit:{scope}:{key}"
        names += [f"{base}:{slot}", f"{base}:{slot - 1}"]
        if once:
            names.append(f"{base}:once:{hashlib.sha256(once.encode()).hexdigest()}")
        sizes.append(3 if once else 2)
    weight = 1 - (now - slot * window) / window
    pipeline.eval(
        _COUNT,
        len(names),
        *names,
        repr(weight),
        repr(limit + _ROUNDING),
        2 * window + 1,
        window,
        FREE_REPEATS,
        *sizes,
    )


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
