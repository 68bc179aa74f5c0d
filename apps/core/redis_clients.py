"""One Redis client per process for Flowgate's own keys (breakers, drain requests, rate
limits, cache generations).

The client is made once, under a lock. Made without one, two request threads that both
found no client made one each, and the one whose client lost the race dropped it while
its pipeline was still reading: ``Redis.__del__`` closes the pool the client owns, in-use
connections included, and that thread's read failed inside redis-py ("Bad file
descriptor", or ``readline`` on None, an AttributeError). The pool is a bounded
``BlockingConnectionPool``: each thread takes a connection of its own and waits briefly
for one when all are busy; idle connections are checked before reuse
(``health_check_interval``) and a dropped connection is retried once at once.
"""

from __future__ import annotations

import threading

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

# Above the web threads (studio/handlers.py WEB_THREADS) plus the process's own threads.
MAX_CONNECTIONS = 64

_clients: dict[str, redis.Redis] = {}
_lock = threading.Lock()


def redis_client() -> redis.Redis:
    """The client for ``settings.REDIS_URL`` (the broker's Redis), made once per URL."""
    url = settings.REDIS_URL
    client = _clients.get(url)
    if client is None:
        with _lock:
            client = _clients.get(url)
            if client is None:
                client = _clients[url] = _make(url)
    return client


# A Redis that accepts connections but does not answer (stalled, or packets dropped on the
# way) must not hold a thread for ever: every blocking client Flowgate makes gives up here.
SOCKET_TIMEOUTS = {"socket_timeout": 2, "socket_connect_timeout": 2}


def _make(url: str) -> redis.Redis:
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=2,  # waiting for a free connection
        **SOCKET_TIMEOUTS,
        health_check_interval=30,
        retry=Retry(NoBackoff(), 1),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
    )
    return redis.Redis(connection_pool=pool)
