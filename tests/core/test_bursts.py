"""apps.core.bursts.take_burst: what a background thread takes from its queue at once."""

from __future__ import annotations

import queue
import threading
import time

from apps.core.bursts import take_burst


def put_later(waiting: queue.SimpleQueue, items: list, every: float) -> threading.Thread:
    def put() -> None:
        for item in items:
            time.sleep(every)
            waiting.put(item)

    thread = threading.Thread(target=put)
    thread.start()
    return thread


def test_it_takes_the_first_item_and_those_queued_behind_it_up_to_most():
    waiting: queue.SimpleQueue[int] = queue.SimpleQueue()
    for item in range(5):
        waiting.put(item)
    assert take_burst(waiting, 3) == [0, 1, 2]
    assert take_burst(waiting, 3) == [3, 4]


def test_items_arriving_within_the_join_time_join_until_the_expected_number():
    waiting: queue.SimpleQueue[int] = queue.SimpleQueue()
    waiting.put(0)
    sender = put_later(waiting, [1, 2, 3], every=0.05)
    assert take_burst(waiting, 10, expected=3, join_seconds=5) == [0, 1, 2]
    sender.join()
    assert take_burst(waiting, 10) == [3]


def test_without_an_expectation_it_does_not_wait_for_more():
    waiting: queue.SimpleQueue[int] = queue.SimpleQueue()
    waiting.put(0)
    sender = put_later(waiting, [1], every=0.3)
    started = time.monotonic()
    assert take_burst(waiting, 10, expected=1, join_seconds=5) == [0]
    assert time.monotonic() - started < 0.3
    sender.join()


def test_it_waits_no_longer_than_the_join_time_for_items_that_do_not_come():
    waiting: queue.SimpleQueue[int] = queue.SimpleQueue()
    waiting.put(0)
    started = time.monotonic()
    assert take_burst(waiting, 10, expected=4, join_seconds=0.2) == [0]
    assert 0.2 <= time.monotonic() - started < 2
