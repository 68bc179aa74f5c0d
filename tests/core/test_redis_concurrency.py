"""The process's Redis client under the web's thread pool, against the real Redis.

Found under load: with about ten request threads, a read failed inside redis-py ("Bad file
descriptor", or ``readline`` on None, an AttributeError) and the sync webhook and the API
answered an HTML 500. The cause: threads that all found no client yet each made one; the
losing client was dropped while its pipeline was still reading, and ``Redis.__del__``
closed the pool it owned, in-use connections included.
"""

from __future__ import annotations

import logging
import threading

import pytest
import redis
from django.conf import settings

from apps.core import ratelimit, redis_clients
from apps.core.generation_cache import generation_keys
from tests.runs.helpers import published_flow
from tests.runs.test_ingress import deliver, webhook_flow

THREADS = 12  # above studio/handlers.py's default WEB_THREADS


def all_at_once(work, threads: int = THREADS) -> list[BaseException]:
    """Run ``work`` in ``threads`` threads released together; the exceptions they raised."""
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            work()
        except BaseException as error:  # collected for the assertion
            errors.append(error)

    started = [threading.Thread(target=run) for _ in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join()
    return errors


def fresh_process_client() -> None:
    """Forget the process's client, as in a web process that has served nothing yet."""
    old = redis_clients._clients.pop(settings.REDIS_URL, None)
    if old is not None:
        old.connection_pool.disconnect()


def test_request_threads_starting_together_share_one_client_and_every_read_succeeds(
    settings, caplog
):
    settings.FLOWGATE = {**settings.FLOWGATE, "RATE_LIMITS": {"webhook": "100000/60"}}
    names = [*generation_keys(), *(f"flowgate:test:name:{index}" for index in range(40))]
    clients: set[int] = set()

    def request_path() -> None:
        clients.add(id(redis_clients.redis_client()))
        for _ in range(15):
            retry_after, values = ratelimit.hit_and_read(scope="webhook", key="k", names=names)
            assert retry_after is None and values is not None and len(values) == len(names)
            assert ratelimit.hits(scope="webhook", keys=["a", "b"]) == [None, None]

    with caplog.at_level(logging.WARNING, logger="apps.core"):
        for _ in range(25):
            fresh_process_client()
            clients.clear()
            assert all_at_once(request_path) == []
            assert len(clients) == 1
    assert [record.getMessage() for record in caplog.records] == []  # nothing failed open
    pool = redis_clients.redis_client().connection_pool
    assert isinstance(pool, redis.BlockingConnectionPool)
    assert pool.max_connections >= THREADS


def broken_client(monkeypatch) -> None:
    """A fault inside the client, as the race above produced."""

    def execute(self, raise_on_error: bool = True):
        raise AttributeError("'NoneType' object has no attribute 'readline'")

    monkeypatch.setattr(redis.client.Pipeline, "execute", execute)
    monkeypatch.setattr(redis.Redis, "get", lambda self, name: execute(self))  # a cache generation


@pytest.mark.django_db(transaction=True)
def test_an_unexpected_client_error_is_logged_and_the_webhook_request_goes_ahead(
    workspace, builder_user, settings, monkeypatch, caplog
):
    settings.FLOWGATE = {**settings.FLOWGATE, "RATE_LIMITS": {"webhook": "1/60"}}
    sync_flow = published_flow(workspace, builder_user, webhook_flow(mode="sync"))
    async_flow = published_flow(workspace, builder_user, webhook_flow())
    broken_client(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="apps.core"):
        answers = deliver(sync_flow.webhook_token, [{"n": 1}, {"n": 2}])
        queued = deliver(async_flow.webhook_token, [{"n": 3}, {"n": 4}])
    assert sorted(answer.json()["echo"] for answer in answers) == [1, 2]  # not throttled
    assert [answer.status_code for answer in queued] == [202, 202]
    failed_open = [r for r in caplog.records if "rate limit webhook not enforced" in r.message]
    assert failed_open and all(record.exc_info for record in failed_open)


def test_an_unexpected_client_error_lets_the_api_request_through(
    client, settings, workspace, builder_user, monkeypatch
):
    settings.FLOWGATE = {**settings.FLOWGATE, "RATE_LIMITS": {"api": "1/60"}}
    client.force_login(builder_user)
    broken_client(monkeypatch)
    for _ in range(3):
        response = client.get("/api/w/acme/runs/")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("application/json")
