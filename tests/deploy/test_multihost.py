"""Flowgate across hosts: Postgres and Redis, the web process (with beat), two workers, the
model service (with its MLflow) and an outside API each on a test host of their own (network
namespaces on one bridge, made by tests/deploy/hosts.py; no traffic leaves them).

Runs created through the web host's API are completed by both worker hosts; the model
service answers model.predict from its own host; a worker host whose link is taken down in
the middle of a run loses no run, and no completed step runs again.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from apps.accounts.services import api_token_create
from apps.mlmodels.training import CLAIM_FRAUD
from studio.processes import container_process, model_service_process
from tests.deploy.hosts import Host, Network, namespaces_available, wait_until
from tests.mlmodels.helpers import CLAIM, INPUTS
from tests.runs.helpers import definition, node, published_flow

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

POSTGRES_BIN = (
    sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
    if Path("/usr/lib/postgresql").exists()
    else Path("/usr/bin")
)
API_PORT = 8080


def flows(workspace, user, api: str):  # type: ignore[no-untyped-def]
    charge = node(
        "charge", "connector.http", method="POST", url=f"{api}/charge", body={"n": "trigger.body.n"}
    )
    score = node(
        "score", "model.predict", model=CLAIM_FRAUD, version="2", inputs=INPUTS, threshold=0.5
    )
    done = node(
        "done", "transform.set", values={"n": "trigger.body.n", "label": "steps.score.output.label"}
    )
    quick = definition(
        [node("start", "trigger.manual"), charge, score, done],
        [("start", "charge"), ("charge", "score"), ("score", "done", "out")],
    )
    slow = node("slow", "connector.http", url=f"{api}/slow?seconds=4", timeout_seconds=8)
    held = definition(
        [node("start", "trigger.manual"), charge, slow, score, done],
        [("start", "charge"), ("charge", "slow"), ("slow", "score"), ("score", "done", "out")],
    )
    return published_flow(workspace, user, quick, name="Quick"), published_flow(
        workspace, user, held, name="Held"
    )


def start_postgres(db: Host, network: Network, test_database_url: str) -> Path:
    """A Postgres server of the db host, holding a copy of the (migrated) test database."""
    data = network.directory / "postgres"
    data.mkdir()
    subprocess.run(["chown", "postgres:postgres", str(data)], check=True)
    as_postgres = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [
            *as_postgres,
            str(POSTGRES_BIN / "initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    with (data / "pg_hba.conf").open("a") as hba:
        hba.write("host all all 10.213.7.0/24 trust\n")
    settings = [
        "-c",
        f"listen_addresses={db.address}",
        "-c",
        f"unix_socket_directories={data}",
        "-c",
        "fsync=off",
        "-c",
        "full_page_writes=off",
    ]
    db.run("postgres", [*as_postgres, str(POSTGRES_BIN / "postgres"), "-D", str(data), *settings])
    wait_until(
        lambda: subprocess.run(["pg_isready", "-q", "-h", str(data)]).returncode == 0,
        timeout=30,
        what="postgres on the db host",
        network=network,
    )
    subprocess.run(["createdb", "-h", str(data), "-U", "postgres", "flowgate"], check=True)
    dump = subprocess.run(
        ["pg_dump", "-Fc", test_database_url], check=True, capture_output=True
    ).stdout
    subprocess.run(
        ["pg_restore", "-h", str(data), "-U", "postgres", "-d", "flowgate", "--no-owner"],
        input=dump,
        check=True,
    )
    return data


def http(host: Host, method: str, url: str, **extra: str) -> dict:
    """A request made from inside ``host`` (curl), answered with JSON."""
    command = [
        "curl",
        "-sS",
        "--fail-with-body",
        "-X",
        method,
        url,
        "-H",
        "Content-Type: application/json",
    ]
    for header in extra.get("headers", "").split("\n"):
        if header:
            command += ["-H", header]
    if "data" in extra:
        command += ["--data", extra["data"]]
    return json.loads(host.call(command, timeout=30))


def warm_up(models: Host, service_url: str) -> None:
    """One prediction from the version the flows use, before any run: the service is ready
    before it has loaded a version, and the first call loads it. On a loaded machine that
    took 17 s (the full suite), past the step's 14 s call timeout: the burst's first
    attempts timed out, the breaker opened and their retries failed on it. The test is
    about hosts, not a cold model, so the model is loaded first (its own timeout: 120 s)."""
    row = {"model": CLAIM_FRAUD, "version": "2", "alias": "", "route_key": "", "inputs": CLAIM}
    command = ["curl", "-sS", "--fail-with-body", "-X", "POST", f"{service_url}/predict_rows"]
    command += ["-H", "Content-Type: application/json", "--data", json.dumps({"rows": [row]})]
    (answer,) = json.loads(models.call(command, timeout=120))
    assert "error" not in answer, answer


def ready(host: Host, url: str) -> bool:
    result = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            host.namespace,
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "Host: localhost",
            url,
        ],
        capture_output=True,
        text=True,
    )
    return result.stdout == "200"


def mlflow_store(model_stack) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """The backend store and artifact folder of the session's MLflow (where the demo model
    was trained), for a second MLflow server on the model host."""
    arguments = model_stack.mlflow.process.args
    return (
        arguments[arguments.index("--backend-store-uri") + 1],
        arguments[arguments.index("--artifacts-destination") + 1],
    )


def start_model_host(models: Host, model_stack) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """MLflow (over the store the session trained the demo model into) and the model
    service, on the model host; their URLs."""
    backend, artifacts = mlflow_store(model_stack)
    mlflow_url, service_url = f"http://{models.address}:5001", f"http://{models.address}:3001"
    mlflow = [str(Path(sys.executable).with_name("mlflow")), "server", "--workers", "1"]
    mlflow += ["--backend-store-uri", backend, "--artifacts-destination", artifacts]
    models.run(
        "mlflow",
        [*mlflow, "--host", models.address, "--port", "5001"],
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
        MLFLOW_SERVER_ALLOWED_HOSTS=f"{models.address},{models.address}:5001",
    )
    service = model_service_process(service_url=service_url, tracking_uri=mlflow_url)
    models.run("models", service.command, **service.environment)
    return mlflow_url, service_url


@dataclass
class Deployment:
    network: Network
    web: Host
    workers: tuple[Host, Host]
    database: psycopg.Connection
    api_log: Path
    start_url: str
    headers: str
    heartbeats: dict[str, Path] = field(default_factory=dict)

    def start(self, flow, n: int) -> str:  # type: ignore[no-untyped-def]
        """Start a run through the web host's REST API, from inside the web host."""
        body = json.dumps({"input": {**CLAIM, "n": n}})
        url = self.start_url.format(flow.id)
        return http(self.web, "POST", url, headers=self.headers, data=body)["id"]

    def statuses(self, ids: list[str]) -> dict[str, str]:
        query = "SELECT id::text, status FROM runs_run WHERE id::text = ANY(%s)"
        return dict(self.database.execute(query, [ids]).fetchall())

    def wait_succeeded(self, ids: list[str], what: str) -> None:
        try:
            wait_until(
                lambda: set(self.statuses(ids).values()) == {"succeeded"},
                timeout=90,
                what=what,
                network=self.network,
            )
        except AssertionError as error:  # the runs as they are now, not as they were at first
            raise AssertionError(f"{self.unfinished(ids)}\n{error}") from None

    def unfinished(self, ids: list[str]) -> str:
        """Each run not succeeded, with its status and its last failed step's error."""
        query = (
            "SELECT run.id::text, run.status, step.node_id, step.attempt, step.error::text"
            "  FROM runs_run AS run LEFT JOIN LATERAL (SELECT * FROM runs_steprun"
            "   WHERE run_id = run.id AND error IS NOT NULL ORDER BY attempt DESC LIMIT 1)"
            "    AS step ON true"
            " WHERE run.id::text = ANY(%s) AND run.status <> 'succeeded'"
        )
        rows = self.database.execute(query, [ids]).fetchall()
        return "runs not succeeded:\n" + "\n".join(" ".join(map(str, row)) for row in rows)

    def calls(self, path: str = "") -> list[dict]:
        """What the outside API received, in order (client address, path, key, body)."""
        calls = [json.loads(line) for line in self.api_log.read_text().splitlines()]
        return [call for call in calls if call["path"].startswith(path)]


@pytest.fixture
def deployment(admin_user, workspace, model_stack, trained_models, test_database_url):  # type: ignore[no-untyped-def]
    reason = namespaces_available()
    if reason:
        pytest.fail(f"this machine cannot make test hosts: {reason}")
    network = Network()
    try:
        db, web, worker_a, worker_b, models, api = (
            network.add(name) for name in ("db", "web", "worker-a", "worker-b", "models", "api")
        )
        flows(workspace, admin_user, f"http://{api.address}:{API_PORT}")
        secret = api_token_create(user=admin_user, workspace=workspace, name="multihost").secret
        socket_dir = start_postgres(db, network, test_database_url)
        redis = ["redis-server", "--bind", db.address, "--save", "", "--protected-mode", "no"]
        db.run("redis", redis)
        api_log = network.directory / "api.jsonl"
        api_log.touch()
        api_host = [sys.executable, "tests/deploy/api_host.py", api.address, str(API_PORT)]
        api.run("api", [*api_host, str(api_log)])
        mlflow_url, service_url = start_model_host(models, model_stack)
        environment = {
            "DATABASE_URL": f"postgres://postgres@{db.address}:5432/flowgate",
            "REDIS_URL": f"redis://{db.address}:6379/0",
            "CELERY_QUEUE": "celery",
            "RUN_LEASE_SECONDS": "5",
            "RECONCILE_INTERVAL_SECONDS": "1",
            "DRAIN_BATCH_SIZE": "1",
            "SSRF_ALLOWLIST": api.address,
            "MODEL_SERVICE_URL": service_url,
            "MLFLOW_TRACKING_URI": mlflow_url,
            "ALLOWED_HOSTS": f"{web.address},localhost",
        }
        deployment = Deployment(
            network,
            web,
            (worker_a, worker_b),
            psycopg.connect(
                host=str(socket_dir), dbname="flowgate", user="postgres", autocommit=True
            ),
            api_log,
            f"http://{web.address}:8000/api/w/{workspace.slug}/flows/{{}}/runs/",
            f"Authorization: Bearer {secret}\nHost: {web.address}",
        )
        start_flowgate(deployment, environment)
        wait_until(
            lambda: ready(models, f"{service_url}/readyz"),
            timeout=120,
            what="model service",
            network=network,
        )
        warm_up(models, service_url)
        yield deployment
        deployment.database.close()
    finally:
        network.close()


def start_flowgate(deployment: Deployment, environment: dict[str, str]) -> None:
    """web, beat and the control worker (the reconciler's ticks) on the web host, one worker
    on each worker host (the image's commands)."""
    web, network = deployment.web, deployment.network
    web_spec = container_process("web", {"PORT": "8000"})
    web.run("web", web_spec.command, **environment, **web_spec.environment)
    web.run("beat", container_process("beat", {}).command, **environment)
    web.run("control", container_process("control", {}).command, **environment)
    worker = container_process("worker", {"WORKER_CONCURRENCY": "1"})
    for host in deployment.workers:
        heartbeat = deployment.heartbeats[host.address] = network.directory / f"{host.name}.alive"
        host.run(
            "worker",
            [*worker.command, f"--hostname={host.name}@%h"],
            **environment,
            WORKER_HEARTBEAT_PATH=str(heartbeat),
            WORKER_HEARTBEAT_SECONDS="1",
        )
    wait_until(
        lambda: ready(web, f"http://{web.address}:8000/readyz"),
        timeout=90,
        what="web",
        network=network,
    )
    heartbeats = deployment.heartbeats.values()
    wait_until(
        lambda: all(path.exists() for path in heartbeats),
        timeout=90,
        what="workers",
        network=network,
    )


def n_of(call: dict) -> int | None:
    return json.loads(call["body"] or "{}").get("n")


def test_runs_cross_hosts_and_a_worker_host_cut_off_mid_run_loses_nothing(deployment, workspace):
    from apps.flows.models import Flow

    quick, held = (Flow.objects.get(workspace=workspace, name=name) for name in ("Quick", "Held"))
    worker_a, worker_b = deployment.workers

    # 1. A burst created on the web host: both worker hosts complete runs of it, and the
    # model service answers every model.predict from its own host.
    burst = [deployment.start(quick, n) for n in range(12)]
    deployment.wait_succeeded(burst, "the burst")
    charged_by = Counter(call["client"] for call in deployment.calls("/charge"))
    assert set(charged_by) == {worker_a.address, worker_b.address}, charged_by
    scores = deployment.database.execute(
        "SELECT output, meta FROM runs_steprun WHERE node_id = 'score' AND status = 'succeeded'"
        " AND run_id::text = ANY(%s)",
        [burst],
    ).fetchall()
    assert len(scores) == 12
    assert {(output["model"], output["version"]) for output, _ in scores} == {(CLAIM_FRAUD, "2")}
    assert all(output["label"] and meta["model_version"] == "2" for output, meta in scores)

    # 2. A run held in its slow step; the worker host holding it is cut off, and more runs
    # arrive meanwhile.
    held_run = deployment.start(held, 1000)
    holder = wait_until(
        lambda: next((call["client"] for call in deployment.calls("/slow")), None),
        timeout=60,
        what="the slow step",
        network=deployment.network,
    )
    cut, survivor = (worker_a, worker_b) if holder == worker_a.address else (worker_b, worker_a)
    cut.cut()
    during = [deployment.start(quick, n) for n in range(2000, 2004)]
    deployment.wait_succeeded([held_run, *during], "runs after the cut")
    # The cut host comes back with its stale step in hand: let it reconnect and try to write.
    cut.reconnect()
    wait_until(
        lambda: deployment.heartbeats[cut.address].stat().st_mtime > time.time() - 2,
        timeout=60,
        what="the cut worker back",
        network=deployment.network,
    )

    every = [*burst, held_run, *during]
    assert set(deployment.statuses(every).values()) == {"succeeded"}
    assert [n_of(call) for call in deployment.calls("/charge")].count(1000) == 1, (
        "a completed charge ran again"
    )
    slow_calls = deployment.calls("/slow")
    assert [call["client"] for call in slow_calls] == [cut.address, survivor.address]
    assert len({call["key"] for call in slow_calls}) == 1, "the retry keeps its Idempotency-Key"
    succeeded = deployment.database.execute(
        "SELECT run_id, node_id, count(*) FROM runs_steprun WHERE status = 'succeeded'"
        " AND run_id::text = ANY(%s) GROUP BY 1, 2",
        [every],
    ).fetchall()
    assert all(count == 1 for _, _, count in succeeded), "a step succeeded twice"
    assert len(succeeded) == 12 * 4 + 5 + 4 * 4
    charges = Counter(n_of(call) for call in deployment.calls("/charge"))
    assert set(charges.values()) == {1} and len(charges) == 17
    late = {call["client"] for call in deployment.calls("/charge") if n_of(call) >= 2000}
    assert late == {survivor.address}
