"""The Redis cache shares one connection pool per process across threads (Django keeps a
cache backend per thread, which used to mean Redis connections per thread)."""

from __future__ import annotations

import threading

from django.core.cache import cache, caches


def test_threads_share_the_processs_redis_connections():
    cache.set("shared-pool-probe", "from the main thread", 30)
    seen: list = []

    def other_thread() -> None:
        backend = caches["default"]
        seen.append((backend, backend._cache._get_connection_pool(False)))
        seen.append(backend.get("shared-pool-probe"))

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join(10)
    (backend, pool), value = seen
    assert value == "from the main thread"
    assert backend is not caches["default"]  # Django's backends are per thread...
    assert pool is caches["default"]._cache._get_connection_pool(False)  # ...the pool is not
