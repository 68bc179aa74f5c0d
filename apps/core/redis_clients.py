"""One Redis client per process for Flowgate's own keys (breakers, drain requests)."""

from __future__ import annotations

import redis
from django.conf import settings

_clients: dict[str, redis.Redis] = {}


def redis_client() -> redis.Redis:
    """The client for ``settings.REDIS_URL`` (the broker's Redis), made once per URL."""
    client = _clients.get(settings.REDIS_URL)
    if client is None:
        client = _clients[settings.REDIS_URL] = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=2
        )
    return client
