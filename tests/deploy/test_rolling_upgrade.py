"""A rolling upgrade with runs in flight (README, "Upgrades"): the database starts on the
previous release's schema with two workers draining runs and three runs waiting for a
reviewer; the new migration is applied under that load, then each old worker is replaced by
a new one (started first, the old one given a warm shutdown). No run is lost or stuck, no
completed step runs again, and the waiting runs resume on the new workers."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections import Counter

import pytest
from django.db import connection

from apps.inbox.services import task_decide
from apps.runs.blocks import envelope
from apps.runs.models import Run, StepRun
from apps.runs.reconciler import reconcile
from apps.runs.services import run_start
from studio.celery import app as celery_app
from tests.inbox.helpers import approval_flow, membership, task_of
from tests.runs.helpers import definition, node, published_flow
from tests.support.http_server import CountingServer
from tests.support.processes import REPOSITORY_ROOT, child_environment
from tests.support.workers import WorkerProcess

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

QUEUE = f"upgrade-{uuid.uuid4().hex[:8]}"
ENVIRONMENT = {"RUN_LEASE_SECONDS": "5", "SSRF_ALLOWLIST": "127.0.0.1", "CELERY_QUEUE": QUEUE}
# The release being rolled out adds this migration (an index on queued runs), kept in a
# test-only app (tests/deploy/upgrade_release): rolling the project's own apps back to an
# older migration would drop columns that today's code, here playing the old workers, uses.
RELEASE = "upgrade_release"
LATEST, INDEX = "0001_queued_runs_by_flow_index", "upgrade_release_queued_by_flow"
WAVE = 8  # runs started before the migration, during it, and before each worker swap


@pytest.fixture(autouse=True)
def upgrade_queue(settings, monkeypatch):
    settings.FLOWGATE = {
        **settings.FLOWGATE,
        "RUN_LEASE_SECONDS": 5,
        "SSRF_ALLOWLIST": ["127.0.0.1"],
    }
    monkeypatch.setitem(celery_app.conf, "task_default_queue", QUEUE)


def manage(database_url: str, *arguments: str, wait: bool = True) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, str(REPOSITORY_ROOT / "manage.py"), *arguments, "--verbosity", "0"],
        env=child_environment(DATABASE_URL=database_url),
    )
    if wait:
        assert process.wait(timeout=180) == 0
    return process


def applied(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM django_migrations WHERE app = %s AND name = %s", [RELEASE, name]
        )
        return cursor.fetchone() is not None


def test_old_workers_replaced_one_by_one_after_a_migration_lose_no_run(
    admin_user, reviewer_user, workspace, test_database_url
):
    manage(test_database_url, "migrate", RELEASE, "zero")
    assert not applied(LATEST)
    workers: list[WorkerProcess] = []
    try:
        with CountingServer() as server:
            work = published_flow(
                workspace,
                admin_user,
                definition(
                    [
                        node("start", "trigger.manual"),
                        node(
                            "charge",
                            "connector.http",
                            method="POST",
                            url=f"{server.url}/charge",
                            body={"n": "trigger.body.n"},
                        ),
                        node(
                            "slow",
                            "connector.http",
                            url=f"{server.url}/slow?seconds=5",  # in flight while a worker is swapped
                            timeout_seconds=10,
                        ),
                        node("done", "transform.set", values={"n": "trigger.body.n"}),
                    ],
                    [("start", "charge"), ("charge", "slow"), ("slow", "done")],
                ),
            )
            reviews = published_flow(workspace, admin_user, approval_flow(), name="Claims review")
            old = [
                WorkerProcess(database_url=test_database_url, environment=ENVIRONMENT).start()
                for _ in range(2)
            ]
            workers += old

            def wave(first: int) -> list[Run]:
                return [
                    run_start(flow=work, trigger="manual", payload=envelope({"n": n})).run
                    for n in range(first, first + WAVE)
                ]

            runs = wave(0)
            waiting = [
                run_start(
                    flow=reviews,
                    trigger="manual",
                    payload=envelope({"claim": f"C-{n}", "customer": "Ann", "amount": 100}),
                    actor=admin_user,
                ).run
                for n in range(3)
            ]
            until(lambda: Run.objects.filter(pk__in=ids(waiting), status="waiting").count() == 3)
            until(lambda: Run.objects.filter(pk__in=ids(runs), status="succeeded").exists())

            # The new release: its migration first, under load (a new wave of runs)...
            migration = manage(test_database_url, "migrate", wait=False)
            runs += wave(WAVE)
            assert migration.wait(timeout=180) == 0
            assert applied(LATEST)
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [INDEX])
                assert cursor.fetchone() is not None, "the release's index was not built"
            in_flight = []
            # ...then each old worker replaced: the new one consumes before the old one stops.
            for index, previous in enumerate(old):
                runs += wave(WAVE * (2 + index))
                workers.append(
                    WorkerProcess(
                        database_url=test_database_url,
                        environment={**ENVIRONMENT, "DRAIN_BATCH_SIZE": "10"},
                    ).start()
                )
                unfinished = Run.objects.filter(pk__in=ids(runs)).exclude(status="succeeded")
                in_flight.append(unfinished.count())
                previous.stop()
            assert not any(worker.is_running for worker in old)

            for run in waiting:
                task_decide(
                    task=task_of(run),
                    actor=reviewer_user,
                    membership=membership(reviewer_user, workspace),
                    decision="approve",
                )
            everything = [*runs, *waiting]
            until(
                lambda: (
                    Run.objects.filter(pk__in=ids(everything), status="succeeded").count()
                    == len(everything)
                ),
                redrive=True,
                timeout=120,
            )
            charges = Counter(
                json.loads(request["body"])["n"]
                for request in server.requests
                if request["path"] == "/charge"
            )
    finally:
        for worker in workers:
            worker.stop()
        if not applied(LATEST):
            manage(test_database_url, "migrate")

    assert all(in_flight), f"each old worker stopped with runs in flight: {in_flight}"
    assert charges == Counter(range(4 * WAVE)), (
        "a completed charge ran again, or a run lost its charge"
    )
    succeeded = Counter(
        StepRun.objects.filter(run__in=everything, status="succeeded").values_list(
            "run_id", "node_id"
        )
    )
    assert set(succeeded.values()) == {1}, "a step succeeded twice"
    assert len(succeeded) == 4 * WAVE * 4 + 3 * 3
    assert {run.output["paid"] for run in Run.objects.filter(pk__in=ids(waiting))} == {True}
    assert not Run.objects.filter(pk__in=ids(everything)).exclude(status="succeeded").exists()


def ids(runs: list[Run]) -> list:
    return [run.pk for run in runs]


def until(predicate, *, timeout: float = 60, redrive: bool = False) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if redrive:
            reconcile()
        time.sleep(0.5)
    states = Counter(Run.objects.values_list("status", flat=True))
    raise AssertionError(f"not within {timeout}s; runs by status: {dict(states)}")
