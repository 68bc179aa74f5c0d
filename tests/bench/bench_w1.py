"""W1, the decision flow of issue 23, through the public webhook with the real services,
beside its floors.

Run: ``python tests/bench/bench_w1.py [--samples N] [--burst N] [--model]``. Uses a database
of its own (``BENCH_DATABASE_URL``, default ``flowgate_bench_w1``; Redis from
``REDIS_URL``, default database 13), starts uvicorn (the studio's web process, pooled
database connections) and two Celery workers (prefork, concurrency 1), and measures:

- floors: a bare view (``GET /healthz``) through the same server, a bare Celery task's
  round trip, and one Postgres commit (an INSERT in autocommit) from this process;
- W1 with the model stubbed by a transform (webhook → transform → model → policy → branch
  → respond, ``mode: sync``): p50/p99 at one caller; CPU milliseconds per run of every
  process involved (web server, Postgres backends, workers, the sealer; the load
  generator and this process reported apart); runs/s, p50/p99 and CPU per run at 1 and
  at 16 concurrent callers;
- an async burst: N W1-stub runs (``mode: async``) posted by 16 callers, timed from the
  first request to the last run's end (webhooks answered 202, workers drain);
- with ``--model``: W1 with the real model service (MLflow + BentoML, ``claim-fraud``) at
  one caller, p50/p99, and an async burst of ``--model-burst`` runs (runs/s, CPU per run,
  ``/predict_rows`` requests counted in the service's access log and rows per request:
  model steps of a drain share requests; ``MODEL_BATCH_MAX_ROWS=1`` turns that off for
  an A/B).

``--web-processes N`` runs N web processes (``studio.serve``, a listening socket each); the
default is the studio's (``WEB_PROCESSES``, else one per core up to two).

The callers are wrk (``loadgen.closed_loop``: one C thread, a keep-alive connection per
caller, latencies from its histogram), a process of its own whose CPU is read as it ends
(``load_generator``), so that the sender costs the shared cores little (Python threads
with httpx cost about 2 CPU-ms per request, and 16 of them took a core).

The sealer (``audit.seal``, every second from beat in production) runs in a thread of this
process during the measures; its CPU is counted. Results go to
tests/bench/results/w1.json. Figures on a shared machine move with its load: each run
prints the floors measured in the same sitting, compare against those.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/flowgate_bench_w1")

# Sets Django up on that database; the engine bench's helpers serve this one too.
base = importlib.import_module("tests.bench.bench_engine")

import psutil  # noqa: E402
import psycopg  # noqa: E402
from django.core.management import call_command  # noqa: E402

from apps.accounts.models import Role  # noqa: E402
from apps.core.tasks import ping  # noqa: E402
from apps.runs.models import Run  # noqa: E402
from studio import serve  # noqa: E402
from tests.bench import common, loadgen  # noqa: E402
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory  # noqa: E402
from tests.runs.w1 import w1_definition, w1_flow  # noqa: E402
from tests.support.workers import WorkerProcess  # noqa: E402

try:  # the code before issue 23 had no sealer; the bench runs against both
    from apps.audit.sealing import audit_seal
except ImportError:  # pragma: no cover
    audit_seal = None  # type: ignore[assignment]

BODY = {"amount": 50, "customer": "c-1"}
APPROVED = '{"decision": "approve"}'  # the stub W1's whole answer


class Sealer:
    """What beat does in production: seal every second; counts its own CPU time."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            started = time.thread_time()
            audit_seal(wait=False)
            self.cpu += time.thread_time() - started

    def __enter__(self) -> Sealer:
        if audit_seal is not None:
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def commit_floor(samples: int) -> dict:
    with psycopg.connect(base.DATABASE_URL, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_commit (id bigserial PRIMARY KEY)")
        return base.summary(
            base.timed(lambda: conn.execute("INSERT INTO bench_commit DEFAULT VALUES"), samples)
        )


def callers(
    url: str, path: str, count: int, clients: int, body: dict | None = BODY, expect: str = ""
) -> dict:
    """``count`` POSTs of ``body`` (GETs if None) from ``clients`` callers, each with its own keep-alive
    connection, sending again when answered (wrk, ``loadgen.closed_loop``): runs/s,
    latency, the sender's CPU. Every answer must be 2xx and hold ``expect``."""
    measured = loadgen.closed_loop(
        url, path, count=count, connections=clients, body=body, expect=expect
    )
    failed = {status: n for status, n in measured["statuses"].items() if status[0] != "2"}
    if failed or measured["errors"] or measured["unexpected_answers"]:
        raise RuntimeError(
            f"{path}: answers {measured['statuses']}, errors {measured['errors']}, "
            f"{measured['unexpected_answers']} without {expect!r}"
        )
    return measured


def warm_up(url: str, path: str, body: dict | None, expect: str = "") -> None:
    """Requests over sixteen connections, so that every web process has served some (the
    kernel hands each connection to one process; a process's first requests import,
    compile and connect: tens of ms, which a one-caller measure must not meet)."""
    callers(url, path, 320, 16, body=body, expect=expect)


def groups(workers: list) -> dict[str, common.ProcessFinder]:
    """The web server, the workers, Postgres, and this process apart (the sealer's thread,
    the bench's polling): the load generator is wrk's process, added by each measure."""
    return common.process_groups(
        web_pid=server_pid, workers=workers, bench_process=lambda: [psutil.Process()]
    )


def closed_loop_measure(url: str, path: str, count: int, clients: int, workers: list) -> dict:
    """Runs/s, latency and CPU per run of ``count`` sync W1 requests from ``clients``
    callers, the sealer sealing every second meanwhile."""
    with Sealer() as sealer, common.cpu_per_run(groups(workers), count) as cpu:
        measured = callers(url, path, count, clients, expect=APPROVED)
        cpu["load_generator"] = sender_cpu(measured, count)
    cpu["sealer"] = round(sealer.cpu * 1000 / count, 3)
    # The sealer's thread is in this process: it moves from there to the server side.
    cpu["server_side"] = round(
        cpu["total"] - cpu["load_generator"] - cpu["bench_process"] + cpu["sealer"], 2
    )
    return {
        "runs_per_second": measured["runs_per_second"],
        "latency": measured["latency"],
        "cpu_ms_per_run": cpu,
        "sender": sender_figures(measured),
    }


def sender_cpu(measured: dict, runs: int) -> float:
    """The sender's CPU ms per run where it was a process of its own (wrk); the httpx
    fallback ran in this process, which ``bench_process`` already counts."""
    if measured["sender"] != "wrk":
        return 0.0
    return float(measured["sender_cpu_seconds"]) * 1000 / runs


def sender_figures(measured: dict) -> dict:
    return {key: measured[key] for key in ("sender", "sender_cpu_ms_per_request")}


def burst(url: str, flow, count: int, workers: list, body: dict = BODY) -> dict:
    since = time.time()
    with common.cpu_per_run(groups(workers), count) as cpu:
        started = time.perf_counter()
        answered = callers(url, f"/hooks/{flow.webhook_token}", count, 16, body)
        cpu["load_generator"] = sender_cpu(answered, count)
        runs = list(
            Run.objects.filter(flow=flow, created_at__gte=_aware(since)).values_list(
                "pk", flat=True
            )
        )
        base.wait_until_finished(runs, poll=0.05)
        elapsed = time.perf_counter() - started
    return {
        "runs": len(runs),
        "seconds": round(elapsed, 2),
        "runs_per_second": round(len(runs) / elapsed, 1),
        "webhooks_answered_per_second": answered["runs_per_second"],
        "webhook_answer": answered["latency"],
        "cpu_ms_per_run": cpu,
        "sender": sender_figures(answered),
    }


def model_phase(workspace, user, samples: int, burst_runs: int) -> dict:
    """W1 with ``model.predict`` on the real model service (MLflow registry, BentoML),
    through a web server started with its URL: c=1 p50/p99; then an async burst of
    ``burst_runs`` drained by two workers started with its URL (runs/s, CPU per run, and
    the mean number of rows per ``/predict_rows`` request the service reported)."""
    global server_pid
    import tempfile

    import httpx

    from apps.mlmodels.training import CLAIM_FRAUD, train_demo_models
    from studio.processes import mlflow_process, model_service_process
    from tests.mlmodels.helpers import CLAIM, INPUTS
    from tests.runs.w1 import w1_model_node
    from tests.support.model_stack import _start
    from tests.support.processes import free_ports, stop_process_group

    mlflow_port, service_port = free_ports(2)
    mlflow_url, service_url = f"http://127.0.0.1:{mlflow_port}", f"http://127.0.0.1:{service_port}"
    var_dir = Path(tempfile.mkdtemp(prefix="flowgate-bench-w1-"))
    mlflow = _start(mlflow_process(tracking_uri=mlflow_url, var_dir=var_dir), mlflow_url)
    service = _start(
        model_service_process(service_url=service_url, tracking_uri=mlflow_url), service_url
    )
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
        body = {**CLAIM, "customer": "c-1"}
        results: dict = {}
        # The version's first load (seconds, more under load) is not what is measured, and
        # inside a sync webhook it would outlast the sync wait: load it first.
        warm_row = {"model": CLAIM_FRAUD, "version": "1", "inputs": CLAIM}
        httpx.post(
            f"{service_url}/predict_rows", json={"rows": [warm_row]}, timeout=120
        ).raise_for_status()
        with base.web_server() as (url, pid):
            server_pid = pid
            hook = f"/hooks/{flow.webhook_token}"
            warm_up(url, hook, body, expect='"decision"')
            cpu = process_tree_cpu(service.process.pid)
            results["c1"] = callers(url, hook, samples, 1, body, expect='"decision"')["latency"]
            results["c1"]["model_service_cpu_ms_per_run"] = round(
                (process_tree_cpu(service.process.pid) - cpu) * 1000 / samples, 2
            )
            if burst_runs:
                before = service_requests(service.log)
                cpu = process_tree_cpu(service.process.pid)
                results["async_burst"] = model_burst(
                    url, workspace, user, burst_runs, body, service_url
                )
                # Its warm-up runs included: a few dozen of the burst's runs.
                results["async_burst"]["model_service_cpu_ms_per_run"] = round(
                    (process_tree_cpu(service.process.pid) - cpu) * 1000 / burst_runs, 2
                )
                steps = results["async_burst"].pop("model_steps")
                requests = service_requests(service.log) - before
                results["async_burst"]["predict_rows_requests"] = requests
                results["async_burst"]["rows_per_request"] = round(steps / max(1, requests), 2)
        return results
    finally:
        stop_process_group(service.process)
        stop_process_group(mlflow.process)


def model_burst(url: str, workspace, user, count: int, body: dict, service_url: str) -> dict:
    from apps.runs.models import StepRun
    from tests.mlmodels.helpers import INPUTS
    from tests.runs.w1 import w1_model_node

    definition = w1_definition(
        model=w1_model_node("claim-fraud", "1", INPUTS), risk="steps.score.output.score"
    )
    definition["nodes"][0]["config"]["mode"] = "async"
    flow = base.published_flow(workspace, user, definition, name="W1 model async")
    environment = {"MODEL_SERVICE_URL": service_url}
    for name in ("MODEL_BATCH_JOIN_SECONDS", "MODEL_BATCH_MAX_ROWS"):
        if name in os.environ:
            environment[name] = os.environ[name]
    workers = [
        WorkerProcess(database_url=base.DATABASE_URL, environment=environment).start()
        for _ in range(2)
    ]
    try:
        callers(url, f"/hooks/{flow.webhook_token}", 20, 4, body)  # warm the workers
        time.sleep(2)
        with Sealer():
            result = burst(url, flow, count, workers, body)
    finally:
        for worker in workers:
            worker.stop()
    sizes = [
        size
        for size in StepRun.objects.filter(
            run__flow=flow, node_id="score", status="succeeded"
        ).values_list("meta__batch_size", flat=True)
        if size
    ]
    # Rows the service scored together (its adaptive batching also merges requests).
    result["mean_rows_per_service_batch"] = round(sum(sizes) / max(1, len(sizes)), 2)
    result["model_steps"] = StepRun.objects.filter(run__flow=flow, node_id="score").count()
    result["model_steps_failed"] = StepRun.objects.filter(
        run__flow=flow, node_id="score", status="failed"
    ).count()
    return result


def process_tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its children (the model service's workers)."""
    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def service_requests(log: Path) -> int:
    """``/predict_rows`` requests the model service has logged (its access log)."""
    return log.read_text(errors="replace").count("path=/predict_rows")


def _aware(timestamp: float):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp - 1, tz=UTC)


server_pid = 0


def main() -> None:
    global server_pid
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=300, help="sequential W1 requests")
    parser.add_argument("--concurrent", type=int, default=800, help="requests at 1 and 16 callers")
    parser.add_argument("--burst", type=int, default=2000, help="async W1 runs in the burst")
    parser.add_argument("--label", default="", help="a name for this code (A/B runs)")
    parser.add_argument("--model", action="store_true", help="also W1 with the model service")
    parser.add_argument(
        "--web-processes",
        type=int,
        default=serve.default_processes(os.environ),
        help="web processes (default: as manage.py studio runs them)",
    )
    parser.add_argument(
        "--model-burst", type=int, default=1000, help="async W1 runs with the model (--model)"
    )
    parser.add_argument(
        "--model-only", action="store_true", help="with --model: skip the floors and W1 stub"
    )
    arguments = parser.parse_args()
    arguments.model |= arguments.model_only
    call_command("migrate", verbosity=0)
    suffix = os.urandom(4).hex()
    workspace = WorkspaceFactory(slug=f"w1-{suffix}")
    user = MembershipFactory(
        user=UserFactory(username=f"w1-{suffix}"), workspace=workspace, role=Role.ADMIN
    ).user
    sync_flow = w1_flow(workspace, user)
    async_definition = w1_definition()
    async_definition["nodes"][0]["config"]["mode"] = "async"
    async_flow = base.published_flow(workspace, user, async_definition, name="W1 async")
    results: dict = {
        "label": arguments.label,
        "cpus": os.cpu_count(),
        "load": os.getloadavg(),
        "web_processes": arguments.web_processes,
    }
    workers = (
        []
        if arguments.model_only
        else [WorkerProcess(database_url=base.DATABASE_URL).start() for _ in range(2)]
    )
    try:
        if not arguments.model_only:
            stub_phase(arguments, results, sync_flow, async_flow, workers)
        write(results, arguments.label)
        if arguments.model:
            for worker in workers:  # the model burst's workers know the service's URL
                worker.stop()
            model = model_phase(workspace, user, arguments.samples, arguments.model_burst)
            results["w1_model_c1"] = model["c1"]
            if "async_burst" in model:
                results["w1_model_async_burst"] = model["async_burst"]
            write(results, arguments.label)
    finally:
        for worker in workers:
            worker.stop()
    print(json.dumps(results, indent=2))


def stub_phase(arguments, results: dict, sync_flow, async_flow, workers: list) -> None:
    """The floors and W1 with the model stubbed (everything but ``--model``)."""
    global server_pid
    with base.web_server(arguments.web_processes) as (url, pid):
        server_pid = pid
        warm_up(url, "/healthz", None)
        bare = callers(url, "/healthz", arguments.samples, 1, body=None)
        results["floor_bare_view"] = bare["latency"]
        results["floor_celery_round_trip"] = base.summary(
            base.timed(lambda: ping.delay("x").get(timeout=30), arguments.samples)
        )
        results["floor_postgres_commit"] = commit_floor(arguments.samples)
        hook = f"/hooks/{sync_flow.webhook_token}"
        warm_up(url, hook, BODY, expect=APPROVED)
        c1 = closed_loop_measure(url, hook, arguments.samples, 1, workers)
        results["w1_stub_c1"] = {
            **c1["latency"],
            "cpu_ms_per_run": c1["cpu_ms_per_run"],
            "sender": c1["sender"],
        }
        one = closed_loop_measure(url, hook, arguments.concurrent, 1, workers)
        sixteen = closed_loop_measure(url, hook, arguments.concurrent, 16, workers)
        results["w1_stub_throughput"] = {
            "runs_per_second_1_caller": one["runs_per_second"],
            "runs_per_second_16_callers": sixteen["runs_per_second"],
            "ratio": round(sixteen["runs_per_second"] / one["runs_per_second"], 2),
            "latency_1_caller": one["latency"],
            "latency_16_callers": sixteen["latency"],
            "cpu_ms_per_run_1_caller": one["cpu_ms_per_run"],
            "cpu_ms_per_run_16_callers": sixteen["cpu_ms_per_run"],
            "sender": sixteen["sender"],
        }
        with Sealer():
            results["w1_stub_async_burst"] = burst(url, async_flow, arguments.burst, workers)


def write(results: dict, label: str) -> None:
    base.RESULTS.mkdir(parents=True, exist_ok=True)
    name = f"w1{'-' + label if label else ''}.json"
    (base.RESULTS / name).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
