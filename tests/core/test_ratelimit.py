"""Sliding-window rate limits (apps/core/ratelimit.py), against the real Redis, with the
limiter's clock pinned either side of a window's end."""

from __future__ import annotations

import uuid

import pytest
import redis

from apps.core import ratelimit
from apps.core.generation_cache import generation_keys

WINDOW_END = 1_800_000_000.0  # a multiple of 60: a window ends here


@pytest.fixture
def at(monkeypatch):
    """Pin the limiter's clock: ``at(t)`` and the next requests are counted at ``t``."""

    def pin(moment: float) -> None:
        monkeypatch.setattr(ratelimit, "clock", lambda: moment)

    return pin


@pytest.fixture
def key() -> str:
    return uuid.uuid4().hex  # a count of its own


def webhook_limit(settings, limit: str) -> None:
    settings.FLOWGATE = {**settings.FLOWGATE, "RATE_LIMITS": {"webhook": limit}}


def test_a_burst_across_a_windows_end_meets_the_limit_once(settings, at, key):
    webhook_limit(settings, "3/60")
    at(WINDOW_END - 0.5)
    assert ratelimit.hits(scope="webhook", keys=[key] * 3) == [None, None, None]
    at(WINDOW_END + 0.5)
    # Counted in fixed windows, these three would have gone ahead too.
    refused = ratelimit.hits(scope="webhook", keys=[key] * 3)
    assert all(retry_after is not None for retry_after in refused)


def test_retry_after_is_when_one_more_request_goes_ahead(settings, at, key):
    webhook_limit(settings, "3/60")
    at(WINDOW_END - 30)  # halfway through a window
    assert ratelimit.hits(scope="webhook", keys=[key] * 3) == [None, None, None]
    at(WINDOW_END + 10)
    # 3 * (1 - 10/60) = 2.5 of the last window still counts: no room for one more until
    # 3 * (1 - f) + 1 <= 3, f = 1/3 of this window, 20 s in.
    assert ratelimit.hit(scope="webhook", key=key) == 10
    at(WINDOW_END + 19)
    assert ratelimit.hit(scope="webhook", key=key) == 1  # refused ones are not counted
    at(WINDOW_END + 20)
    assert ratelimit.hit(scope="webhook", key=key) is None
    # Now 2 of the last window and 1 of this one: the next waits for the last window's
    # part to fall to 1, f = 2/3, 40 s in.
    assert ratelimit.hit(scope="webhook", key=key) == 20


def test_past_the_limit_within_one_window_the_wait_runs_into_the_next(settings, at, key):
    webhook_limit(settings, "2/60")
    at(WINDOW_END - 45)
    assert ratelimit.hits(scope="webhook", keys=[key] * 3) == [None, None, 45 + 30]
    # The next window counts these two as spread over this one: one more goes ahead
    # once half of it has slid out, 30 s into the next.
    at(WINDOW_END + 29)
    assert ratelimit.hit(scope="webhook", key=key) == 1
    at(WINDOW_END + 30)
    assert ratelimit.hit(scope="webhook", key=key) is None


def test_a_caller_steady_below_the_limit_is_never_refused(settings, at, key):
    webhook_limit(settings, "6/60")
    moment = WINDOW_END - 7
    # One request every 12 s, 5 a window: the previous window's part, counted as if spread
    # evenly over it, is exact for a steady caller.
    for _ in range(40):
        at(moment)
        assert ratelimit.hit(scope="webhook", key=key) is None
        moment += 12


def test_a_repeat_just_after_a_windows_end_is_not_counted_again(settings, at, key):
    webhook_limit(settings, "2/60")
    at(WINDOW_END - 0.5)
    assert ratelimit.hits(scope="webhook", keys=[key], onces=["evt-1"]) == [None]
    at(WINDOW_END + 0.5)
    repeats = ratelimit.hits(scope="webhook", keys=[key] * 3, onces=["evt-1"] * 3)
    assert repeats == [None, None, None]
    assert ratelimit.hit(scope="webhook", key=key) is None  # the second of the 2
    assert ratelimit.hit(scope="webhook", key=key) is not None


def test_a_batch_is_counted_and_the_generations_read_in_one_round_trip(settings, key):
    webhook_limit(settings, "3/60")
    sent: list[object] = []
    send = redis.connection.Connection.send_packed_command

    def counted_send(connection, command, check_health=True):
        sent.append(command)
        return send(connection, command, check_health)

    ratelimit.hits(scope="webhook", keys=[key])  # the process's client is connected
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(redis.connection.Connection, "send_packed_command", counted_send)
        throttles, values = ratelimit.hits_and_read(
            scope="webhook",
            keys=[key, uuid.uuid4().hex, key, key],
            onces=[None, "evt-2", "evt-3", None],
            names=generation_keys(),
        )
    assert len(sent) == 1
    assert throttles[:3] == [None, None, None] and throttles[3] is not None
    assert values is not None and len(values) == len(generation_keys())
