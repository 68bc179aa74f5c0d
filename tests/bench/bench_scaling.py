"""Throughput as worker processes are added: the engine with 1, 2 and 4 Celery worker
processes (prefork, concurrency 1 each) draining the same burst of runs.

Run: ``python tests/bench/bench_scaling.py [--runs N] [--workers 1,2,4]`` (``make bench``
runs it too). It uses bench_engine's database, flow and measurement (a burst of N runs of
a 3-step flow queued in one transaction, timed from the commit to the last run's end) and
reports, per worker count, runs/s and the CPU milliseconds each run cost (workers, the
Postgres backends, this process). Results: tests/bench/results/scaling.json.

Runs/s stops growing once the workers and Postgres use every core; CPU per run is what
predicts a larger machine: runs/s per core is about 1000 / (CPU ms per run).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

# bench_engine sets up Django and the bench database when imported: it comes first.
from tests.bench import bench_engine  # noqa: I001
import psutil
from django.core.management import call_command
from django.db import transaction

from apps.accounts.models import Role
from apps.runs.blocks import envelope
from apps.runs.services import run_start
from apps.runs.tasks import request_drain
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from tests.runs.helpers import chain, published_flow
from tests.support.workers import WorkerProcess

DATABASE_URL, RESULTS = bench_engine.DATABASE_URL, bench_engine.RESULTS


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def burst(flow, workers: list, count: int) -> dict:  # type: ignore[no-untyped-def]
    """``count`` runs committed as queued with no message sent, then one drain request:
    the clock starts before the workers can see any of them (a backlog being drained)."""
    with transaction.atomic():
        runs = [
            run_start(flow=flow, trigger="manual", payload=envelope({"n": i}), enqueue=False).run.pk
            for i in range(count)
        ]
    groups = {
        "workers": lambda: bench_engine.worker_processes(workers),
        "postgres": bench_engine.database_backends,
        "load_generator": lambda: [psutil.Process()],
    }
    with bench_engine.cpu_per_run(groups, count) as cpu:
        started = time.perf_counter()
        request_drain()
        bench_engine.wait_until_finished(runs, poll=0.05)
        elapsed = time.perf_counter() - started
    return {"seconds": round(elapsed, 2), "runs_per_second": round(count / elapsed, 1), "cpu": cpu}


def measure(flow, count: int, processes: int) -> dict:  # type: ignore[no-untyped-def]
    workers = [WorkerProcess(database_url=DATABASE_URL).start() for _ in range(processes)]
    try:
        burst(flow, workers, max(20, count // 10))  # every worker warmed up
        before = load_average()
        figures = burst(flow, workers, count)
    finally:
        for worker in workers:
            worker.stop()
    cpu = figures["cpu"]["total"]
    return {
        "worker_processes": processes,
        "runs": count,
        "seconds": figures["seconds"],
        "runs_per_second": figures["runs_per_second"],
        "cpu_ms_per_run": figures["cpu"],
        "runs_per_second_per_core_predicted": round(1000 / cpu, 1) if cpu else None,
        "load_average_before": before,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1000, help="runs per measurement")
    parser.add_argument("--workers", default="1,2,4", help="worker process counts")
    arguments = parser.parse_args()
    call_command("migrate", verbosity=0)
    suffix = uuid.uuid4().hex[:8]
    workspace = WorkspaceFactory(slug=f"scaling-{suffix}")
    user = MembershipFactory(
        user=UserFactory(username=f"scaling-{suffix}"), workspace=workspace, role=Role.ADMIN
    ).user
    flow = published_flow(workspace, user, chain(2), name="Scaling chain 3")
    rows = [measure(flow, arguments.runs, int(n)) for n in arguments.workers.split(",")]
    base = rows[0]["runs_per_second"]
    for row in rows:
        row["speedup"] = round(row["runs_per_second"] / base, 2)
    results = {
        "cpus": os.cpu_count(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "steps_per_run": 3,
        "rows": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scaling.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'workers':>8} {'runs/s':>8} {'speedup':>8} {'CPU ms/run':>11} {'load':>6}")
    for row in rows:
        print(
            f"{row['worker_processes']:>8} {row['runs_per_second']:>8} {row['speedup']:>8}"
            f" {row['cpu_ms_per_run']['total']:>11} {row['load_average_before']:>6}"
        )


if __name__ == "__main__":
    main()
