"""Taking work from a queue in bursts: a background thread that serves many producers
(the webhook batcher, the live-event publisher) waits for one item and takes those queued
behind it with it, so one round trip serves them all."""

from __future__ import annotations

import queue
import time
from typing import TypeVar

Item = TypeVar("Item")


def take_burst(
    waiting: queue.SimpleQueue[Item], most: int, *, expected: int = 1, join_seconds: float = 0
) -> list[Item]:
    """The next item (waiting for one), and those already queued behind it: ``most`` in all
    at most. While fewer than ``expected`` are taken, those that arrive within
    ``join_seconds`` of the first join them."""
    burst = [waiting.get(), *take_queued(waiting, most - 1)]
    wanted = min(expected, most)
    if len(burst) >= wanted or join_seconds <= 0:
        return burst
    deadline = time.monotonic() + join_seconds
    while len(burst) < wanted and (left := deadline - time.monotonic()) > 0:
        try:
            burst.append(waiting.get(timeout=left))
        except queue.Empty:
            break
        burst += take_queued(waiting, most - len(burst))
    return burst


def take_queued(waiting: queue.SimpleQueue[Item], most: int) -> list[Item]:
    """The items queued now, ``most`` at most; none waited for."""
    burst: list[Item] = []
    while len(burst) < most:
        try:
            burst.append(waiting.get_nowait())
        except queue.Empty:
            break
    return burst
