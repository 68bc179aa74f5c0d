"""Engine speed against its floor: the same work as a bare Celery task and a bare Django view.

Run: ``python tests/bench/bench_engine.py [--runs N]`` (or ``make bench``). It migrates a
database of its own (``flowgate_bench``, Redis database 13), starts two real Celery workers
(prefork, concurrency 1 each; ``--workers`` and ``--concurrency`` change that) and the ASGI
web server (uvicorn), then measures:

- bare Celery round trip: ``core.ping.delay().get()`` — the floor under any engine step;
- engine latency: a manual run of a 1-step and a 10-step ``transform.set`` chain, from
  ``run_start`` to the run's ``succeeded`` row, so per-step overhead = (10-step - 1-step) / 9;
- engine throughput: N runs of a 3-step flow queued at once (one transaction), drained
  by the 2 workers, timed from the commit; also N runs started one at a time by this
  process while the workers drain them (bounded by how fast one client starts runs);
  beside their floor: 2N bare tasks (no result) drained by the same workers;
- sync webhook: ``POST /hooks/<token>`` of a 5-step flow answered with the flow's response
  (inline fast path), against ``GET /healthz`` (a bare view through the same server and
  middleware).

Wall-clock figures on a shared machine move with its load, so the throughput and webhook
phases also report CPU milliseconds per run by process (workers, web server, this load
generator, and the Postgres backends serving the bench database): where the time goes,
whatever else the machine is doing.

Results go to tests/bench/results/engine.json and are printed; figures, not asserts.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/flowgate_bench"
)
os.environ["DATABASE_URL"] = DATABASE_URL
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/13")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings.test")

import django  # noqa: E402
import httpx  # noqa: E402
import psutil  # noqa: E402
import psycopg  # noqa: E402
import redis  # noqa: E402

RESULTS = ROOT / "tests" / "bench" / "results"


def create_database() -> None:
    name = DATABASE_URL.rsplit("/", 1)[1]
    with psycopg.connect(DATABASE_URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            admin.execute(f'CREATE DATABASE "{name}"')


create_database()
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402

from apps.accounts.models import Role  # noqa: E402
from apps.core.tasks import ping  # noqa: E402
from apps.runs.blocks import envelope  # noqa: E402
from apps.runs.models import Run  # noqa: E402
from apps.runs.services import run_start  # noqa: E402
from studio import serve  # noqa: E402
from tests.bench.common import (  # noqa: E402  (the other benchmarks use them from here too)
    cpu_per_run,
    database_backends,
    process_tree,
    worker_processes,
)
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory  # noqa: E402
from tests.runs.helpers import chain, definition, node, published_flow  # noqa: E402
from tests.support.processes import (  # noqa: E402
    child_environment,
    free_port,
    stop_process_group,
    wait_for_http,
)
from tests.support.workers import WorkerProcess  # noqa: E402


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "n": len(samples),
        "p50_ms": round(percentile(samples, 0.50), 2),
        "p99_ms": round(percentile(samples, 0.99), 2),
        "mean_ms": round(statistics.fmean(samples), 2),
    }


def timed(action: Callable[[], object], repeat: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        action()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def webhook_flow() -> dict:
    """Five steps: the trigger, three transforms, the response."""
    return definition(
        [
            node("hook", "trigger.webhook", mode="sync"),
            node("amount", "transform.set", values={"value": "double(trigger.body.amount)"}),
            node(
                "score",
                "transform.set",
                values={"risk": "steps.amount.output.value > 100.0 ? 0.9 : 0.1"},
            ),
            node("decide", "transform.set", values={"approve": "steps.score.output.risk < 0.5"}),
            node("reply", "flow.respond", body={"approve": "steps.decide.output.approve"}),
        ],
        [("hook", "amount"), ("amount", "score"), ("score", "decide"), ("decide", "reply")],
        name="Sync webhook",
    )


def wait_until_finished(run_ids: list, timeout: float = 300, poll: float = 0.002) -> None:
    deadline = time.monotonic() + timeout
    pending = set(run_ids)
    while pending and time.monotonic() < deadline:
        finished = Run.objects.filter(pk__in=pending, status__in=["succeeded", "failed"])
        for run_id, status in finished.values_list("pk", "status"):
            if status != "succeeded":
                raise RuntimeError(f"run {run_id} {status}")
            pending.discard(run_id)
        if pending:
            time.sleep(poll)
    if pending:
        raise RuntimeError(f"{len(pending)} runs did not finish in {timeout}s")


def run_latency(flow, repeat: int) -> list[float]:
    def one() -> None:
        run = run_start(flow=flow, trigger="manual", payload=envelope({"n": 1})).run
        wait_until_finished([run.pk])

    return timed(one, repeat)


@contextmanager
def web_server(
    processes: int = 1, timeout_keep_alive: int | None = None
) -> Iterator[tuple[str, int]]:
    """The studio's web process (``python -m studio.serve``) on a free port (``processes``
    > 1: that many, each with its own listening socket); its URL and pid (the parent of
    the others)."""
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="flowgate-bench-web-", suffix=".log")[1])
    command = serve.command(
        host="127.0.0.1", port=port, processes=processes, timeout_keep_alive=timeout_keep_alive
    )
    with log.open("ab") as output:
        server = subprocess.Popen(
            command,
            cwd=ROOT, env=child_environment(DATABASE_URL=DATABASE_URL, DATABASE_POOL="true"),
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", process=server, seconds=60, log=log)
        yield f"http://127.0.0.1:{port}", server.pid
    finally:
        stop_process_group(server)


def main() -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2000, help="runs per throughput test")
    parser.add_argument("--repeat", type=int, default=50, help="samples per latency figure")
    # The setting is two worker processes; on a machine with more cores, give each
    # worker a pool of several processes to see how the engine scales out.
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--concurrency", type=int, default=1, help="pool processes per worker")
    arguments = parser.parse_args()
    call_command("migrate", verbosity=0)
    suffix = uuid.uuid4().hex[:8]  # the bench database keeps earlier runs' rows
    workspace = WorkspaceFactory(slug=f"bench-{suffix}")
    user = MembershipFactory(
        user=UserFactory(username=f"bench-{suffix}"), workspace=workspace, role=Role.ADMIN
    ).user
    one_step = published_flow(workspace, user, chain(1), name="Bench chain 1")
    ten_steps = published_flow(workspace, user, chain(10), name="Bench chain 10")
    three_steps = published_flow(workspace, user, chain(2), name="Bench chain 3")
    hook = published_flow(workspace, user, webhook_flow(), name="Bench webhook")
    results: dict[str, object] = {
        "cpus": os.cpu_count(),
        "workers": arguments.workers,
        "concurrency": arguments.concurrency,
    }
    workers = [
        WorkerProcess(database_url=DATABASE_URL, concurrency=arguments.concurrency).start()
        for _ in range(arguments.workers)
    ]
    try:
        results["celery_round_trip"] = summary(
            timed(lambda: ping.delay("x").get(timeout=30), arguments.repeat * 4)
        )
        results["run_1_step"] = summary(run_latency(one_step, arguments.repeat))
        results["run_10_steps"] = summary(run_latency(ten_steps, arguments.repeat))
        per_step = (results["run_10_steps"]["p50_ms"] - results["run_1_step"]["p50_ms"]) / 9
        results["engine_overhead_per_step_p50_ms"] = round(per_step, 2)
        results["celery_throughput"] = celery_throughput(workers, arguments.runs * 2)
        results["throughput"] = throughput(three_steps, workers, arguments.runs, burst=True)
        results["throughput_one_by_one"] = throughput(
            three_steps, workers, arguments.runs, burst=False
        )
        with web_server() as (url, server_pid), httpx.Client(base_url=url, timeout=30) as client:
            results["bare_view_healthz"] = summary(
                timed(lambda: client.get("/healthz").raise_for_status(), arguments.repeat * 4)
            )
            samples = arguments.repeat * 4

            def deliver() -> None:
                client.post(f"/hooks/{hook.webhook_token}", json={"amount": 50}).raise_for_status()

            timed(deliver, 0, warmup=3)
            with cpu_per_run(
                {
                    "web_server": lambda: process_tree(server_pid),
                    "postgres": database_backends,
                    "load_generator": lambda: [psutil.Process()],
                },
                samples,
            ) as cpu:
                results["sync_webhook"] = summary(timed(deliver, samples, warmup=0))
            results["sync_webhook"]["cpu_ms_per_request"] = cpu
    finally:
        for worker in workers:
            worker.stop()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "engine.json").write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)


def celery_throughput(workers: list, count: int) -> dict:
    """The floor under engine throughput: ``count`` bare tasks (no result, like the
    engine's) drained by the same workers. Done when the queue is empty and the messages
    left unacknowledged are back to what they were (late acks: a task is acknowledged after
    it ran; a worker killed earlier may have left some behind)."""
    broker = redis.Redis.from_url(os.environ["REDIS_URL"])
    queue = ping.app.conf.task_default_queue
    left_behind = broker.hlen("unacked")
    with cpu_per_run(
        {
            "workers": lambda: worker_processes(workers),
            "load_generator": lambda: [psutil.Process()],
        },
        count,
    ) as cpu:
        started = time.perf_counter()
        for _ in range(count):
            ping.apply_async(args=["x"], ignore_result=True)
        deadline = time.monotonic() + 300
        while broker.llen(queue) or broker.hlen("unacked") > left_behind:
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not drain the bare tasks in 300 s")
            time.sleep(0.005)
        elapsed = time.perf_counter() - started
    return {
        "tasks": count,
        "seconds": round(elapsed, 2),
        "tasks_per_second": round(count / elapsed, 1),
        "cpu_ms_per_task": cpu,
    }


def throughput(flow, workers: list, count: int, *, burst: bool) -> dict:
    """``count`` runs of ``flow`` drained by the workers. A burst queues them all in one
    transaction (a backlog, a bulk import) and times the workers alone, from the commit
    to the last run's end; otherwise this process starts them one at a time while the
    workers drain them, and the rate it can start them at bounds the figure. The poll is
    coarse (50 ms) so that watching does not take CPU from the work being watched."""
    groups = {
        "workers": lambda: worker_processes(workers),
        "postgres": database_backends,
        "load_generator": lambda: [psutil.Process()],
    }

    def start_all() -> list:
        return [
            run_start(flow=flow, trigger="manual", payload=envelope({"n": i})).run.pk
            for i in range(count)
        ]

    if burst:
        with transaction.atomic():
            runs = start_all()
    with cpu_per_run(groups, count) as cpu:
        started = time.perf_counter()
        if not burst:
            runs = start_all()
        all_started = time.perf_counter() - started
        wait_until_finished(runs, poll=0.05)
        elapsed = time.perf_counter() - started
    figures = {
        "runs": count,
        "steps_per_run": 3,
        "seconds": round(elapsed, 2),
        "runs_per_second": round(count / elapsed, 1),
        "steps_per_second": round(count * 3 / elapsed, 1),
        "cpu_ms_per_run": cpu,
    }
    if not burst:
        figures["runs_started_per_second"] = round(count / all_started, 1)
    return figures


def print_table(results: dict) -> None:
    rows = [
        ("bare Celery task round trip", results["celery_round_trip"]),
        ("manual run, 1 step", results["run_1_step"]),
        ("manual run, 10 steps", results["run_10_steps"]),
        ("bare Django view (GET /healthz)", results["bare_view_healthz"]),
        ("sync webhook, 5 steps", results["sync_webhook"]),
    ]
    print(f"{'measure':<34}{'p50 ms':>10}{'p99 ms':>10}{'n':>6}")
    for label, figures in rows:
        print(f"{label:<34}{figures['p50_ms']:>10}{figures['p99_ms']:>10}{figures['n']:>6}")
    print(f"engine overhead per step (p50): {results['engine_overhead_per_step_p50_ms']} ms")
    drained = results["throughput"]
    print(
        f"throughput, 3-step flow, {results['workers']} workers "
        f"(pool of {results['concurrency']} each, {results['cpus']} CPUs): "
        f"{drained['runs_per_second']} runs/s ({drained['runs']} runs in {drained['seconds']} s)"
    )
    print(f"  CPU ms per run: {drained['cpu_ms_per_run']}")
    trickle = results["throughput_one_by_one"]
    print(
        f"  started one at a time by this process while they run: "
        f"{trickle['runs_per_second']} runs/s (started at {trickle['runs_started_per_second']}/s);"
        f" CPU ms per run: {trickle['cpu_ms_per_run']}"
    )
    floor = results["celery_throughput"]
    print(
        f"floor: bare Celery tasks, same workers: {floor['tasks_per_second']} tasks/s "
        f"({floor['tasks']} in {floor['seconds']} s); CPU ms per task: {floor['cpu_ms_per_task']}"
    )
    print(f"sync webhook CPU ms per request: {results['sync_webhook']['cpu_ms_per_request']}")
    print(f"written to {RESULTS / 'engine.json'}")


if __name__ == "__main__":
    main()
