"""Django's Redis cache with one connection pool per process.

Django keeps a cache backend per thread, and its Redis client a connection pool per
backend, so every thread opened Redis connections of its own (with a thread per request,
a new connection every time a cached value was read). Here the pools are shared by the
process's threads (a redis-py pool is thread-safe); forked children (Celery's prefork
pool) make their own, since a pool is keyed by the process id too.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.utils.functional import cached_property

_pools: dict[tuple[int, str], Any] = {}
_lock = threading.Lock()


class SharedPoolRedisCacheClient(RedisCacheClient):
    def _get_connection_pool(self, write: bool) -> Any:
        # Django's private attributes (no type stubs): the same ones its own method uses.
        client: Any = self
        server = client._servers[client._get_connection_pool_index(write)]
        key = (os.getpid(), server)
        pool = _pools.get(key)
        if pool is None:
            with _lock:
                pool = _pools.get(key)
                if pool is None:
                    pool = _pools[key] = client._pool_class.from_url(server, **client._pool_options)
        return pool


class SharedPoolRedisCache(RedisCache):
    """``django.core.cache.backends.redis.RedisCache`` with process-wide connection pools."""

    @cached_property
    def _cache(self) -> SharedPoolRedisCacheClient:
        backend: Any = self
        return SharedPoolRedisCacheClient(backend._servers, **backend._options)
