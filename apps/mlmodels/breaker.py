"""A circuit breaker for the model service, shared by every worker through Redis.

Closed: calls go through. After ``threshold`` consecutive failures (refused, timed out,
5xx) it opens for ``cooldown`` seconds: calls fail at once without touching the service.
Then it is half-open: one caller at a time gets through as a probe; a success closes it, a
failure opens it again for another cooldown.

A call costs one Redis round trip while the circuit is healthy: ``allow`` reads the
open-until time and the failure count together, and the ``success`` that follows has
nothing to reset when both were absent. (A failure another process records between the two
is then not reset by this success; it expires with the count, or the next success that
sees it resets it.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings

from apps.core.redis_clients import redis_client

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        threshold: int | None = None,
        cooldown: float | None = None,
        client: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.threshold = threshold or settings.FLOWGATE["MODEL_BREAKER_FAILURES"]
        self.cooldown = cooldown or settings.FLOWGATE["MODEL_BREAKER_COOLDOWN_SECONDS"]
        self.redis = client or redis_client()
        self.clock = clock
        prefix = f"flowgate:breaker:{name}"
        self._failures, self._open_until, self._probe = (
            f"{prefix}:failures",
            f"{prefix}:open_until",
            f"{prefix}:probe",
        )
        # Per thread: whether its last ``allow`` found nothing for a success to reset.
        self._seen = threading.local()

    def state(self) -> str:
        open_until = self.redis.get(self._open_until)
        if open_until is None:
            return CLOSED
        return OPEN if self.clock() < float(open_until) else HALF_OPEN

    def retry_in(self) -> float:
        open_until = self.redis.get(self._open_until)
        return max(0.0, float(open_until) - self.clock()) if open_until else 0.0

    def allow(self) -> bool:
        """May a call go through now? In half-open state only one probe at a time may."""
        open_until, failures = self.redis.mget(self._open_until, self._failures)
        self._seen.clean = open_until is None and failures is None
        if open_until is None:
            return True
        if self.clock() < float(open_until):
            return False
        ttl = max(1, int(self.cooldown))
        return bool(self.redis.set(self._probe, "1", nx=True, ex=ttl))

    def success(self) -> None:
        if getattr(self._seen, "clean", False):  # this thread's allow found nothing to reset
            self._seen.clean = False
            return
        self.redis.delete(self._failures, self._open_until, self._probe)

    def failure(self) -> None:
        self._seen.clean = False
        failures = self.redis.incr(self._failures)
        self.redis.expire(self._failures, max(60, int(self.cooldown * 10)))
        if failures >= self.threshold or self.state() == HALF_OPEN:
            self.redis.set(self._open_until, str(self.clock() + self.cooldown))
            self.redis.delete(self._probe)
