"""Tasks executed by a real Celery worker process through the real Redis broker."""

from __future__ import annotations

import uuid

import psutil
import pytest
from celery.exceptions import TimeoutError as CeleryTimeout
from django.db import connection

from apps.core.tasks import ping
from apps.runs.blocks import envelope
from apps.runs.models import Run
from apps.runs.services import run_start
from tests.runs.helpers import chain, published_flow
from tests.support.waiting import wait_for


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


def test_a_worker_keeps_its_database_connection_between_tasks(
    transactional_db, celery_worker, workspace, builder_user
):
    """Celery's Django fixup would close it around every task (a new Postgres backend per
    task); the worker closes it only when broken or older than CONN_MAX_AGE."""
    flow = published_flow(workspace, builder_user, chain(1), name="Two steps")

    def finished(count: int) -> list[Run]:
        runs = [
            run_start(flow=flow, trigger="manual", payload=envelope({"n": 1})).run
            for _ in range(count)
        ]
        wait_for(
            lambda: (
                Run.objects.filter(pk__in=[r.pk for r in runs], status="succeeded").count() == count
            )
        )
        return runs

    finished(1)
    connected = postgres_connections(celery_worker)
    finished(3)

    assert len(connected) == 1
    assert postgres_connections(celery_worker) == connected


def postgres_connections(worker) -> set[tuple[str, int]]:
    """The worker's open TCP connections to the database server, by local address."""
    port = int(connection.settings_dict["PORT"])
    processes = [psutil.Process(worker.process.pid)]
    processes += processes[0].children(recursive=True)
    return {
        tuple(link.laddr)
        for process in processes
        for link in process.net_connections(kind="tcp")
        if link.raddr and link.raddr.port == port and link.status == psutil.CONN_ESTABLISHED
    }


def test_a_worker_logs_a_failed_task_but_not_every_task_that_succeeded(
    transactional_db, celery_worker
):
    """Per-task "received" / "succeeded" lines are off by default (CELERY_TASK_LOG_LEVEL):
    at a few hundred runs a second they would bury the lines that matter."""
    token = uuid.uuid4().hex
    assert ping.delay(token).get(timeout=30) == f"pong:{token}"
    ping.app.send_task(
        "runs.advance", args=[f"not-a-run-{token}"], queue=ping.app.conf.task_default_queue
    )

    wait_for(lambda: f"not-a-run-{token}" in celery_worker.log_path.read_text())
    log = celery_worker.log_path.read_text()
    assert "ERROR" in log and "runs.advance" in log
    assert token not in log.replace(f"not-a-run-{token}", "")
