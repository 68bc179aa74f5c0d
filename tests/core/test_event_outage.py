"""Redis down: live events are dropped with one log line, not a traceback each."""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest
from channels.layers import channel_layers

from apps.core.events import publish_run_event
from studio.env import channel_layer
from tests.support.processes import free_port


@pytest.fixture
def layer_at(settings):
    def point_at(redis_url: str) -> None:
        settings.CHANNEL_LAYERS = {"default": channel_layer(redis_url)}
        channel_layers.backends = {}

    original = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]
    yield point_at
    point_at(original)


def test_a_burst_of_events_while_redis_is_down_logs_one_line_and_one_when_back(
    layer_at, caplog, settings
):
    caplog.set_level(logging.WARNING, logger="apps.core.events")
    # Published from a clean slate: a lapse an earlier test left open (one that broke
    # redis-py's pipelines, which the publisher's thread uses too) is logged closed here.
    publish_run_event("w", "r", {"type": "run.step", "step": -1}, wait=True)
    caplog.clear()
    layer_at(f"redis://127.0.0.1:{free_port()}/3")  # nobody listens there
    for step in range(35):
        publish_run_event("w", "r", {"type": "run.step", "step": step}, wait=True)
    down = [record for record in caplog.records if record.name == "apps.core.events"]
    assert len(down) == 1
    assert "live events are not being published" in down[0].getMessage()
    assert down[0].exc_info is None

    layer_at(settings.REDIS_URL)  # Redis is back
    publish_run_event("w", "r", {"type": "run.step", "step": 35}, wait=True)
    back = [record for record in caplog.records if record.name == "apps.core.events"][1:]
    assert [record.getMessage() for record in back] == [
        "live events are published again (70 dropped)"
    ]  # each event went to two groups: the workspace's and the run's


@pytest.fixture
def silent_redis():
    """A loopback address that accepts connections and never answers (a stalled Redis)."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{server.getsockname()[1]}/3"
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()


def test_a_redis_that_never_answers_holds_the_publisher_for_seconds_not_for_ever(
    layer_at, silent_redis, caplog, settings
):
    """Without a socket timeout the publisher's thread would wait on the stalled Redis for
    ever, and every later event of the process would queue behind it."""
    caplog.set_level(logging.WARNING, logger="apps.core.events")
    layer_at(silent_redis)
    started = time.monotonic()
    publish_run_event("w", "r", {"type": "run.step"}, wait=True)  # waits 5 s at most
    assert time.monotonic() - started < 5
    assert any(
        "live events are not being published" in record.getMessage() for record in caplog.records
    )
    layer_at(settings.REDIS_URL)
    publish_run_event("w", "r", {"type": "run.step"}, wait=True)
    assert "live events are published again" in caplog.records[-1].getMessage()
