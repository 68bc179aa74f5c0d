"""Flows that call out, through the public entry point, with real services.

Run: ``python tests/bench/bench_io.py [--seconds 10]``. Uses the engine benchmark's
database and helpers (``bench_engine.py``): two real Celery workers (prefork, one process
each), the ASGI web server, and a sink on loopback (``sink.py`` under uvicorn) answering
each call after 1 ms, then after 200 ms. The flow is

    webhook (async) → transform → HTTP call → branch → HTTP call → respond

Webhooks are sent at a fixed rate (open loop: the rate does not slow down when Flowgate
does) for ``--seconds`` by ``loadgen.open_loop`` (a process of its own, asyncio on
uvloop over keep-alive sockets, about 0.25 CPU-ms per webhook); each run's end-to-end
time is from its webhook's due time to its ``finished_at``. Reported: runs/s completed
(``runs_per_second``: runs ÷ time from the first webhook to the last run's end, which
stays under the offered rate by the last run's latency even when Flowgate keeps up),
``sustained_runs_per_second`` (the runs that ended while webhooks were being sent, once
the first fifth of the phase had passed, ÷ that time: when Flowgate keeps up, runs end at
the rate they arrive, shifted by their latency, so it equals the offered rate whatever
that latency; when it falls behind, it is the rate it manages), ``backlog_at_last_send`` (runs sent but not yet ended when
sending stopped; about the rate times the typical latency when keeping up, growing with
the length of the phase when not), p50/p99 end-to-end, and CPU
milliseconds per run by process group (web server, workers, Postgres backends; the sink
and the load generator apart, with the sender's own figures: the rate it wrote at, how
late against the schedule, the answers' latency), beside two
floors: a bare Celery task on the same workers, and DBOS-style durable execution at its
barest (a plain loop committing one row per step to Postgres).

``--more-fast-rates 330,360`` measures the 1 ms sink at those rates too (``sink_1ms_at_330``
…), to find the rate at which Flowgate stops keeping up. By default it measures 340: at the
offered 300 a sustained rate is at most 300 by construction (a run or two either way at the
window's edges), so only a higher offer shows whether 300 runs/s are held with room.

``--w1-requests N`` adds W1 (sync webhook → transform → ``model.predict`` on the real
model service, MLflow + BentoML → ``policy.evaluate`` → branch → respond) at 1 and 16
concurrent callers (wrk, ``loadgen.closed_loop``): runs/s, p50/p99 of each request, CPU
per run (the model service's too). ``--web-processes`` runs that many uvicorn processes (``WEB_PROCESSES``).

The machine may be shared: figures move with its load. Results go to
tests/bench/results/io.json; figures, not asserts.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench import bench_engine as bench  # sets Django up, so first

# isort: split

import httpx
import psutil
from django.core.management import call_command
from django.db import transaction

from apps.accounts.models import Role
from apps.runs.blocks import envelope
from apps.runs.models import Run
from apps.runs.services import run_start
from tests.bench import common, loadgen
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from tests.runs.helpers import definition, node, published_flow
from tests.support.processes import free_port, stop_process_group
from tests.support.workers import WorkerProcess

WORKER_ENVIRONMENT = {"SSRF_ALLOWLIST": "127.0.0.1"}
# CPU figures reported beside Flowgate's, not in its total.
APART = ("sink", "load_generator")
SENDER_FIGURES = (
    "sender", "lag_ms", "answer_ms", "connections", "waited_for_a_connection", "retried",
    "sender_cpu_ms_per_request",
    "sender_process_cpu_seconds",
)  # fmt: skip


def calling_flow(sink: str) -> dict:
    return definition(
        [
            node("hook", "trigger.webhook", mode="async"),
            node("prep", "transform.set", values={"amount": "double(trigger.body.amount)"}),
            node("score", "connector.http", method="POST", url=f"{sink}/score",
                 body={"amount": "steps.prep.output.amount"}),
            node("check", "logic.branch", condition="steps.score.output.status == 200"),
            node("notify", "connector.http", method="POST", url=f"{sink}/notify",
                 body={"score": "steps.score.output.body.score"}),
            node("reply", "flow.respond", body={"score": "steps.score.output.body.score"}),
        ],
        [("hook", "prep"), ("prep", "score"), ("score", "check"), ("check", "notify", "true"),
         ("notify", "reply")],
        name="Calls out",
    )  # fmt: skip


@contextmanager
def sink_server(delay_ms: float) -> Iterator[tuple[str, int]]:
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="flowgate-bench-sink-", suffix=".log")[1])
    with log.open("ab") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "tests.bench.sink:app", "--host", "127.0.0.1",
             "--port", str(port), "--no-access-log", "--lifespan", "off",
             "--backlog", "4096"],
            cwd=bench.ROOT, env={**bench.child_environment(), "SINK_DELAY_MS": str(delay_ms)},
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url, timeout=2)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    try:
        yield url, server.pid
    finally:
        stop_process_group(server)


def web_server(processes: int):
    """The studio's web process; several keep idle connections a minute, as this bench's
    phases leave them idle between offers."""
    return bench.web_server(processes, timeout_keep_alive=60 if processes > 1 else None)


def send_webhooks(url: str, token: str, rate: float, seconds: float) -> dict:
    """Open loop: one webhook every 1/rate s for ``seconds``, from the cheap sender of
    ``loadgen.py`` (a process of its own); the run id and scheduled send time of each
    accepted one, and the sender's own figures."""
    return loadgen.open_loop(
        url,
        f"/hooks/{token}",
        rate=rate,
        seconds=seconds,
        body='{"amount": {n}}',
        cycle=200,
        run_header="X-Flowgate-Run",
    )


def finished_times(run_ids: list[str], timeout: float) -> dict[str, float]:
    deadline, ends = time.monotonic() + timeout, {}
    pending = set(run_ids)
    while pending and time.monotonic() < deadline:
        rows = Run.objects.filter(pk__in=pending, finished_at__isnull=False).values_list(
            "pk", "status", "finished_at"
        )
        for run_id, status, finished_at in rows:
            if status != "succeeded":
                raise RuntimeError(f"run {run_id} {status}")
            assert finished_at is not None  # the filter's
            ends[str(run_id)] = finished_at.timestamp()
            pending.discard(run_id) if run_id in pending else pending.discard(str(run_id))
        time.sleep(0.1)
    if pending:
        raise RuntimeError(f"{len(pending)} runs did not finish in {timeout}s")
    return ends


def steady_window(sent: dict[str, float], ends: dict[str, float]) -> dict:
    """Whether the engine keeps up with the offered rate: the runs that ended in the steady
    part of the sending (its last four fifths, when runs have been arriving for a while),
    per second of it, and the runs sent but not ended at the last send. (A window opening
    at the first run's end undercounts by the runs in flight at its close: about the rate
    times the latency, 11 runs/s at 300/s and half a second.)"""
    first, closes = min(sent.values()), max(sent.values())
    opens = first + (closes - first) / 5
    if closes <= opens:  # a phase too short to have a steady part
        return {"sustained_runs_per_second": None, "backlog_at_last_send": None}
    ended_inside = sum(1 for end in ends.values() if opens <= end <= closes)
    backlog = sum(1 for run, at in sent.items() if at <= closes and ends[run] > closes)
    return {
        "sustained_runs_per_second": round(ended_inside / (closes - opens), 1),
        "steady_window_seconds": round(closes - opens, 2),
        "backlog_at_last_send": backlog,
    }


def measure(flow, url: str, groups: dict, rate: float, seconds: float) -> dict:
    expected = int(rate * seconds)
    with common.cpu_per_run(groups, expected, apart=APART) as cpu:
        outcome = send_webhooks(url, flow.webhook_token, rate, seconds)
        cpu["load_generator"] = outcome["sender_process_cpu_seconds"] * 1000 / expected
        sent = outcome.pop("sent")
        ends = finished_times(list(sent), timeout=300)
    first_sent, last_end = min(sent.values()), max(ends.values())
    latencies = [(ends[run] - sent[run]) * 1000 for run in sent]
    steady = steady_window(sent, ends)
    return {
        "target_rate": rate,
        "runs": len(sent),
        "refused": outcome["refused"],
        "webhooks_sent_per_second": outcome["sent_per_second"],
        "webhooks_answered_per_second": outcome["answered_per_second"],
        "runs_per_second": round(len(sent) / (last_end - first_sent), 1),
        **steady,
        "end_to_end": bench.summary(latencies),
        "cpu_ms_per_run": cpu,
        "sender": {key: outcome[key] for key in SENDER_FIGURES},
    }


def burst(flow, groups: dict, count: int) -> dict:
    """The engine alone: ``count`` runs queued in one transaction (as a backlog of
    webhooks would leave them), drained by the two workers; timed from the commit."""
    with transaction.atomic():
        runs = [
            run_start(flow=flow, trigger="webhook", payload=envelope({"amount": i % 200})).run.pk
            for i in range(count)
        ]
    with common.cpu_per_run(groups, count, apart=APART) as cpu:
        started = time.perf_counter()
        bench.wait_until_finished(runs, poll=0.05)
        elapsed = time.perf_counter() - started
    return {
        "runs": count,
        "seconds": round(elapsed, 2),
        "runs_per_second": round(count / elapsed, 1),
        "cpu_ms_per_run": cpu,
    }


def per_step_commit_floor(runs: int, steps: int = 6) -> dict:
    """DBOS-style durable execution at its barest: a plain loop that commits one row per
    step of each run (its output, as JSON) to Postgres, nothing else. CPU of this process
    and the database backends."""
    import psycopg

    with (
        psycopg.connect(bench.DATABASE_URL, autocommit=True) as conn,
        common.cpu_per_run(common.process_groups(loop=lambda: [psutil.Process()]), runs) as cpu,
    ):
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_step_commit "
            "(run_id uuid, step int, output jsonb, PRIMARY KEY (run_id, step))"
        )
        started = time.perf_counter()
        for _ in range(runs):
            run_id = uuid.uuid4()
            for step in range(steps):
                conn.execute(
                    "INSERT INTO bench_step_commit VALUES (%s, %s, %s)",
                    [run_id, step, json.dumps({"step": step, "amount": 42})],
                )
        elapsed = time.perf_counter() - started
    return {
        "runs": runs,
        "steps_per_run": steps,
        "runs_per_second": round(runs / elapsed, 1),
        "cpu_ms_per_run": cpu,
    }


def callers_latency(url: str, path: str, body: dict, count: int, clients: int) -> dict:
    """``count`` POSTs of ``body`` from ``clients`` callers (wrk, ``loadgen.closed_loop``),
    each with its own keep-alive connection: runs/s and each request's latency."""
    loadgen.closed_loop(url, path, count=clients * 3, connections=clients, body=body)  # warm
    measured = loadgen.closed_loop(url, path, count=count, connections=clients, body=body)
    statuses = measured["statuses"]
    if set(statuses) - {"200", "202"} or measured["errors"]:
        raise RuntimeError(f"W1 answers {statuses}, errors {measured['errors']}")
    return {
        "runs_per_second": measured["runs_per_second"],
        "latency": measured["latency"],
        # 202: past the sync timeout, a worker ends it
        "answered_202_past_sync_timeout": statuses.get("202", 0),
        "sender": measured["sender"],
        "sender_cpu_ms_per_request": measured["sender_cpu_ms_per_request"],
    }


def w1_model_phase(workspace, user, workers: list, requests: int, web_processes: int) -> dict:
    """W1 (sync webhook → transform → ``model.predict`` on the real model service (MLflow
    registry, BentoML) → ``policy.evaluate`` → branch → respond) at 1 and 16 callers."""
    import os

    from apps.mlmodels.training import CLAIM_FRAUD, train_demo_models
    from studio.processes import mlflow_process, model_service_process
    from tests.mlmodels.helpers import CLAIM, INPUTS
    from tests.runs.w1 import w1_flow, w1_model_node
    from tests.support.model_stack import _start
    from tests.support.processes import free_ports

    mlflow_port, service_port = free_ports(2)
    mlflow_url, service_url = f"http://127.0.0.1:{mlflow_port}", f"http://127.0.0.1:{service_port}"
    var_dir = Path(tempfile.mkdtemp(prefix="flowgate-bench-io-w1-"))
    mlflow = _start(mlflow_process(tracking_uri=mlflow_url, var_dir=var_dir), mlflow_url)
    service = _start(
        model_service_process(service_url=service_url, tracking_uri=mlflow_url), service_url
    )
    results: dict[str, object] = {}
    try:
        mlflow.wait("/health")
        train_demo_models(tracking_uri=mlflow_url, names=(CLAIM_FRAUD,), rows=400)
        service.wait("/readyz")
        flow = w1_flow(
            workspace,
            user,
            model=w1_model_node(CLAIM_FRAUD, "1", INPUTS),
            risk="steps.score.output.score",
            name="W1 model",
        )
        os.environ["MODEL_SERVICE_URL"] = service_url
        body, path = {**CLAIM, "customer": "c-1"}, f"/hooks/{flow.webhook_token}"
        with web_server(web_processes) as (url, web_pid):
            groups = common.process_groups(
                web_pid=web_pid,
                workers=workers,
                model_service=lambda: common.process_tree(service.process.pid),
            )
            for clients in (1, 16):
                count = requests if clients == 1 else requests * 2
                with common.cpu_per_run(groups, count, apart=APART) as cpu:
                    measured = callers_latency(url, path, body, count, clients)
                    cpu["load_generator"] = measured.pop("sender_cpu_ms_per_request")
                results[f"callers_{clients}"] = {**measured, "cpu_ms_per_run": cpu}
    finally:
        stop_process_group(service.process)
        stop_process_group(mlflow.process)
    return results


def main() -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10, help="length of each load phase")
    parser.add_argument("--fast-rate", type=float, default=300, help="webhooks/s, 1 ms sink")
    parser.add_argument(
        "--more-fast-rates",
        default="340",
        help="comma-separated webhooks/s measured after --fast-rate, 1 ms sink (sink_1ms_at_N)",
    )
    parser.add_argument("--slow-rate", type=float, default=200, help="webhooks/s, 200 ms sink")
    parser.add_argument("--floor-tasks", type=int, default=2000)
    parser.add_argument("--web-processes", type=int, default=1)
    parser.add_argument("--w1-requests", type=int, default=0, help="W1 with the real model")
    parser.add_argument("--skip-sinks", action="store_true", help="only floors (and W1)")
    parser.add_argument("--skip-floors", action="store_true")
    parser.add_argument("--fast-sink-only", action="store_true", help="no 200 ms sink phase")
    arguments = parser.parse_args()
    call_command("migrate", verbosity=0)
    suffix = uuid.uuid4().hex[:8]
    workspace = WorkspaceFactory(slug=f"bench-io-{suffix}")
    user = MembershipFactory(
        user=UserFactory(username=f"bench-io-{suffix}"), workspace=workspace, role=Role.ADMIN
    ).user
    results: dict[str, object] = {
        "cpus": psutil.cpu_count(),
        "workers": 2,
        "web_processes": arguments.web_processes,
    }
    workers = [
        WorkerProcess(database_url=bench.DATABASE_URL, environment=WORKER_ENVIRONMENT).start()
        for _ in range(2)
    ]
    try:
        if not arguments.skip_floors:
            results["floor_bare_celery_task"] = bench.celery_throughput(
                workers, arguments.floor_tasks
            )
            results["floor_per_step_commit"] = per_step_commit_floor(arguments.floor_tasks // 4)
        with web_server(arguments.web_processes) as (url, web_pid):
            groups = common.process_groups(web_pid=web_pid, workers=workers)
            phases: list[tuple[str, int, float]] = [
                ("sink_1ms", 1, arguments.fast_rate),
                ("sink_200ms", 200, arguments.slow_rate),
            ]
            if arguments.fast_sink_only:
                phases = phases[:1]
            for label, delay, rate in [] if arguments.skip_sinks else phases:
                with sink_server(delay) as (sink, sink_pid):
                    flow = published_flow(workspace, user, calling_flow(sink), name=label)
                    with_sink = {**groups, "sink": partial(common.process_tree, sink_pid)}
                    measure(flow, url, with_sink, rate, 1)  # warm-up: connections, caches
                    results[label] = measure(flow, url, with_sink, rate, arguments.seconds)
                    if delay == 1:  # where Flowgate stops keeping up
                        for more in filter(None, arguments.more_fast_rates.split(",")):
                            results[f"{label}_at_{more}"] = measure(
                                flow, url, with_sink, float(more), arguments.seconds
                            )
                    results[f"{label}_queued_at_once"] = burst(
                        flow, with_sink, int(rate * arguments.seconds)
                    )
                    print(json.dumps({label: results[label]}), file=sys.stderr, flush=True)
        if arguments.w1_requests:
            try:
                results["w1_model"] = w1_model_phase(
                    workspace, user, workers, arguments.w1_requests, arguments.web_processes
                )
            except Exception as error:  # the figures above are kept
                results["w1_model"] = {"error": repr(error)}
    finally:
        for worker in workers:
            worker.stop()
    bench.RESULTS.mkdir(parents=True, exist_ok=True)
    (bench.RESULTS / "io.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
