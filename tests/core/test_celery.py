"""Tasks executed by a real Celery worker process through the real Redis broker."""

from __future__ import annotations

import pytest
from celery.exceptions import TimeoutError as CeleryTimeout

from apps.core.tasks import ping


def test_real_worker_executes_a_task_from_redis(transactional_db, celery_worker):
    assert ping.delay("hello").get(timeout=30) == "pong:hello"


def test_task_messages_are_json():
    from studio.celery import app

    assert app.conf.task_serializer == "json"
    assert app.conf.accept_content == ["json"]
    assert app.conf.task_acks_late is True


def test_a_killed_worker_is_replaced_by_a_new_one(transactional_db, start_worker):
    first = start_worker(queues=("test-crash",))
    first.kill()
    assert not first.is_running

    pending = ping.apply_async(args=["after-crash"], queue="test-crash")
    with pytest.raises(CeleryTimeout):
        pending.get(timeout=2)

    start_worker(queues=("test-crash",))
    assert pending.get(timeout=30) == "pong:after-crash"
