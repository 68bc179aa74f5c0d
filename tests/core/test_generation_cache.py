"""Process-local caches behind a generation number in Redis (apps/core/generation_cache.py),
read with the webhook's rate limit in one round trip."""

from __future__ import annotations

import uuid

import pytest

from apps.core.generation_cache import GenerationCache, generation_keys, snapshot
from apps.core.ratelimit import hit_and_read
from apps.core.redis_clients import redis_client

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_value_is_loaded_once_per_generation_and_again_when_it_moves():
    cache = GenerationCache("test-generation-cache")
    loads = []

    def load() -> str:
        loads.append(1)
        return f"value {len(loads)}"

    assert cache.get("k", load) == "value 1"
    assert cache.get("k", load) == "value 1"
    redis_client().incr(cache.key)  # another process changed what is cached
    assert cache.get("k", load) == "value 2"
    assert len(loads) == 2


def test_one_round_trip_counts_the_request_and_reads_the_generations_for_the_request(
    settings,
):
    settings.FLOWGATE = {**settings.FLOWGATE, "RATE_LIMITS": {"webhook": "2/60"}}
    cache = GenerationCache("test-snapshot-cache")
    assert cache.key in generation_keys()
    loads = []

    def load() -> int:
        loads.append(1)
        return len(loads)

    key = uuid.uuid4().hex  # a window of its own
    retry_after, read = hit_and_read(scope="webhook", key=key, names=generation_keys())
    assert retry_after is None
    with snapshot(read):
        assert cache.get("k", load) == 1
        redis_client().incr(cache.key)  # moved during the request: seen by the next one
        assert cache.get("k", load) == 1
    retry_after, read = hit_and_read(scope="webhook", key=key, names=generation_keys())
    with snapshot(read):
        assert cache.get("k", load) == 2
    retry_after, _ = hit_and_read(scope="webhook", key=key, names=generation_keys())
    assert retry_after is not None  # the third request in the window is refused
    with snapshot(None):  # Redis could not be read: nothing is cached
        assert cache.get("k", load) == 3
        assert cache.get("k", load) == 4
