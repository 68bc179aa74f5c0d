"""Taking work from a queue in bursts: a background thread that serves many producers
(the webhook batcher, the live-event publisher) waits for one item and takes those queued
behind it with it, so one round trip serves them all."""

from __future__ import annotations

import queue
from typing import TypeVar

Item = TypeVar("Item")


def take_burst(waiting: queue.SimpleQueue[Item], most: int) -> list[Item]:
    """The next item (waiting for one), and those already queued behind it: ``most`` in all
    at most."""
    return [waiting.get(), *take_queued(waiting, most - 1)]


def take_queued(waiting: queue.SimpleQueue[Item], most: int) -> list[Item]:
    """The items queued now, ``most`` at most; none waited for."""
    burst: list[Item] = []
    while len(burst) < most:
        try:
            burst.append(waiting.get_nowait())
        except queue.Empty:
            break
    return burst
