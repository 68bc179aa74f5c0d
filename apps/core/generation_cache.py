"""Process-local caches of database reads, invalidated in every process through a
generation number in Redis.

Each process keeps what it read (an LRU of ``size`` entries) together with the generation
it read it at; a lookup reads the generation (one Redis GET, far cheaper than the query it
spares) and trusts the entry only while the generation is unchanged and the entry is
younger than ``max_age`` (in case a change could not reach Redis). A change to the cached
rows calls ``changed_in_transaction`` (from model signals): the process drops its entries,
its thread reads from Postgres until its transaction ends (what it reads may be rolled
back), and once the transaction commits the generation moves, so every other process reads
again. When Redis cannot be reached nothing is cached.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, cast

import redis
from django.db import connection, transaction

from .redis_clients import redis_client

logger = logging.getLogger(__name__)
# Generations read once for a whole request (``snapshot``), by Redis key.
_snapshot: ContextVar[dict[str, Any] | None] = ContextVar("flowgate_generations", default=None)
_caches: list[GenerationCache] = []


def generation_keys() -> list[str]:
    """The Redis keys of every cache, to be read together (``snapshot``)."""
    return [cache.key for cache in _caches]


@contextmanager
def snapshot(values: list[bytes | None] | None) -> Iterator[None]:
    """Within the block the caches go by these generations, which the caller read in one
    round trip with its other work (``values`` in the order of ``generation_keys()``; None
    when Redis could not be read: then nothing is cached)."""
    keys = generation_keys()
    read = dict.fromkeys(keys) if values is None else dict(zip(keys, values, strict=True))
    token = _snapshot.set(
        {key: None if values is None else (value or b"0") for key, value in read.items()}
    )
    try:
        yield
    finally:
        _snapshot.reset(token)


@contextmanager
def snapshot_unless_taken() -> Iterator[None]:
    """``snapshot`` of the generations read now, unless the caller took one for its whole
    request already (a sync webhook's, read with its rate limit): then that one holds."""
    if _snapshot.get() is not None:
        yield
        return
    with snapshot(read_generations()):
        yield


def read_generations() -> list[bytes | None] | None:
    """The generations of every cache, in one round trip, for ``snapshot`` (None when
    Redis cannot be read: then nothing is cached)."""
    try:
        values = cast(list[bytes | None], redis_client().mget(generation_keys()))
    except redis.RedisError:
        logger.warning("caches: Redis unavailable, reading from Postgres", exc_info=False)
        return None
    return values


class GenerationCache:
    def __init__(self, name: str, *, max_age: float = 60.0, size: int = 1024) -> None:
        self.name = name
        self.key = f"flowgate:{name}:generation"
        self.max_age, self.size = max_age, size
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[Any, float, Any]] = OrderedDict()
        self._transaction = threading.local()
        _caches.append(self)

    def get(self, key: Hashable, load: Callable[[], Any]) -> Any:
        """The cached value of ``key``, or ``load()`` (then cached)."""
        return self.get_many([key], lambda _: {key: load()})[key]

    def get_many(
        self, keys: list[Any], load: Callable[[list[Any]], dict[Any, Any]]
    ) -> dict[Any, Any]:
        """The values of ``keys``: those cached, and ``load(missing keys)`` (one call for
        all; a key it leaves out is cached as None)."""
        generation = None if self._changed_in_this_transaction() else self.generation()
        found: dict[Any, Any] = {}
        if generation is not None:
            now = time.monotonic()
            with self._lock:
                for key in keys:
                    hit = self._entries.get(key)
                    if hit is not None and hit[0] == generation and hit[1] > now:
                        found[key] = hit[2]
        missing = [key for key in keys if key not in found]
        if not missing:
            return found
        loaded = load(missing)
        for key in missing:
            found[key] = loaded.get(key)
        if generation is not None:
            expires = time.monotonic() + self.max_age
            with self._lock:
                for key in missing:
                    self._entries[key] = (generation, expires, found[key])
                    self._entries.move_to_end(key)
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
        return found

    def peek(self, key: Hashable) -> Any:
        """The value last cached for ``key``, whatever its generation or age (None if none):
        a hint, for a choice that stays right when the hint is stale (``get`` is the truth)."""
        with self._lock:
            hit = self._entries.get(key)
        return None if hit is None else hit[2]

    def generation(self) -> Any:
        """The current generation (None when Redis cannot say: no caching)."""
        read = _snapshot.get()
        if read is not None and self.key in read:
            return read[self.key]
        try:
            return redis_client().get(self.key) or b"0"
        except Exception as error:  # a request never fails for the cache
            logger.warning(
                "%s cache: Redis unavailable, reading from Postgres",
                self.name,
                exc_info=not isinstance(error, redis.RedisError),
            )
            return None

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def follow(self, *models: type[Any]) -> None:
        """Drop the cached values in every process once a saved or deleted row of one of
        ``models`` commits (connected in an app's ``ready``)."""
        from django.db.models.signals import post_delete, post_save

        for model in models:
            for signal in (post_save, post_delete):
                signal.connect(self.changed_in_transaction, sender=model)

    def changed_in_transaction(self, **_: Any) -> None:
        """A cached row was written (a signal receiver): this thread reads from Postgres
        until its transaction ends, and every process is told once it commits."""
        self.clear()
        self._transaction.changed = True
        transaction.on_commit(self.changed)

    def changed(self) -> None:
        """Tell every process that the cached rows changed. After the commit."""
        self._transaction.changed = False
        self.clear()
        try:
            redis_client().incr(self.key)
        except Exception:  # others then notice within max_age
            logger.warning("%s cache: could not announce a change", self.name, exc_info=True)

    def _changed_in_this_transaction(self) -> bool:
        if not getattr(self._transaction, "changed", False):
            return False
        if connection.in_atomic_block:
            return True
        self._transaction.changed = False  # that transaction ended (committed or rolled back)
        return False
