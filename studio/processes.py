"""The processes that make up a running Flowgate, in one place.

``manage.py studio`` runs them on one machine; deploy/ runs the same commands in containers.
Each entry is a name and a command line; the studio passes every process the same
environment (``ProcessSpec.child_environment``).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from studio import serve

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
MANAGE_PY = str(REPOSITORY_ROOT / "manage.py")
# Where the local mail sink listens (the demo's ``demo-mail`` connection).
MAIL_SINK_PORT = 1025


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    command: list[str]
    # Extra environment for this process only.
    environment: dict[str, str] = field(default_factory=dict)

    def child_environment(self, shared: Mapping[str, str]) -> dict[str, str]:
        """What the process runs with: the shared environment (so every process gets the
        same settings, ``TRACING_EXPORTER`` and ``OTEL_EXPORTER_OTLP_ENDPOINT`` included),
        its name in traces (``OTEL_SERVICE_NAME``) and its own extras."""
        return {**shared, "OTEL_SERVICE_NAME": f"flowgate-{self.name}", **self.environment}


def _host_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def mlflow_process(*, tracking_uri: str, var_dir: Path) -> ProcessSpec:
    """The MLflow tracking server and model registry: sqlite backend and artifacts under
    ``var/mlflow``, listening where ``MLFLOW_TRACKING_URI`` says."""
    host, port = _host_port(tracking_uri, 5001)
    root = var_dir / "mlflow"
    return ProcessSpec(
        "mlflow",
        [
            str(Path(sys.executable).with_name("mlflow")),
            "server",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--host",
            host,
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        # MLflow 3's background job runner starts a dozen processes Flowgate does not use.
        {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )


# The model service's own environment: torch, transformers and tokenizers
# (workers/serving/requirements.txt) on top of the web app's packages, which it reads
# through a .pth file (scripts/bootstrap.sh). Only the model service and the language
# model trainer run with it.
MODELS_VENV = REPOSITORY_ROOT / ".venv-models"
# What the model service's environment needs: no weights downloaded at run time.
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


def models_python() -> str:
    """The model service's interpreter: ``.venv-models`` when bootstrap made it, else this
    one (an image that installs the serving packages into its only environment)."""
    candidate = MODELS_VENV / "bin" / "python"
    return str(candidate) if candidate.exists() else sys.executable


def model_service_process(*, service_url: str, tracking_uri: str) -> ProcessSpec:
    """The BentoML model service (workers/serving/service.py) at ``MODEL_SERVICE_URL``."""
    host, port = _host_port(service_url, 3001)
    return ProcessSpec(
        "models",
        [
            models_python(),
            "-m",
            "bentoml",
            "serve",
            "workers.serving.service:ModelService",
            "--working-dir",
            str(REPOSITORY_ROOT),
            "--host",
            host,
            "--port",
            str(port),
        ],
        {"MLFLOW_TRACKING_URI": tracking_uri, "BENTOML_DO_NOT_TRACK": "True", **OFFLINE},
    )


def mail_sink_process(*, port: int) -> ProcessSpec:
    """A local SMTP server that prints every message it receives (aiosmtpd's debugging
    handler): the demo's ``demo-mail`` connection sends here, so nothing leaves the machine."""
    return ProcessSpec(
        "mail",
        [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}"],
    )


def control_queue() -> str:
    from django.conf import settings

    return str(settings.CELERY_CONTROL_QUEUE)


def celery_worker(*options: str) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", "studio", "worker", "--loglevel=INFO",
        *options, "--without-gossip", "--without-mingle",
    ]  # fmt: skip


def studio_processes(
    *, host: str, port: int, worker_concurrency: int, web_processes: int = 1
) -> list[ProcessSpec]:
    """``web_processes`` above 1 runs that many uvicorn processes on the port, each with
    its own listening socket (studio/serve.py), event loop, webhook batcher and
    connection pool."""
    python = sys.executable
    web = serve.command(host=host, port=port, processes=web_processes)
    return [
        ProcessSpec("web", web, {"DATABASE_POOL": "true"}),
        ProcessSpec("worker", celery_worker(f"--concurrency={worker_concurrency}")),
        # The reconciler's queue, served by a process of its own: its ticks never wait
        # behind drains, however long the backlog.
        ProcessSpec(
            "control",
            celery_worker("--pool=solo", f"--queues={control_queue()}", "--hostname=control@%h"),
        ),
        ProcessSpec(
            "beat",
            [python, "-m", "celery", "-A", "studio", "beat", "--loglevel=INFO"],
        ),
        # Starts runs of trigger.stream flows from Redis Streams (consumer groups).
        ProcessSpec("streams", [python, MANAGE_PY, "streams", "consume"]),
    ]


def mlflow_server_process(*, port: int) -> ProcessSpec:
    """MLflow for a deployment: the backend store, the artifact destination (``s3://...``
    with ``MLFLOW_S3_ENDPOINT_URL`` for an S3-compatible store) and the rest come from
    MLflow's own ``MLFLOW_*`` variables; artifacts are proxied, so clients need no S3 keys."""
    return ProcessSpec(
        "mlflow",
        [
            str(Path(sys.executable).with_name("mlflow")),
            "server",
            "--serve-artifacts",
            "--host",
            "0.0.0.0",  # noqa: S104 - inside a container, behind its network
            "--port",
            str(port),
        ],
        {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )


CONTAINER_PROCESSES = (
    "web", "worker", "control", "beat", "streams", "models", "mlflow", "migrate",
)  # fmt: skip


def container_process(name: str, environ: Mapping[str, str]) -> ProcessSpec:
    """The process ``name`` as a container runs it (deploy/image/entrypoint.sh): listening on
    every address of the container, ports from ``PORT``, ``MODELS_PORT``, ``MLFLOW_PORT``."""
    if name == "migrate":
        return ProcessSpec("migrate", [sys.executable, MANAGE_PY, "migrate", "--noinput"])
    if name == "models":
        port = environ.get("MODELS_PORT", "3001")
        return model_service_process(
            service_url=f"http://0.0.0.0:{port}",
            tracking_uri=environ.get("MLFLOW_TRACKING_URI", "http://mlflow:5000"),
        )
    if name == "mlflow":
        return mlflow_server_process(port=int(environ.get("MLFLOW_PORT", "5000")))
    processes = studio_processes(
        host="0.0.0.0",  # noqa: S104 - inside a container, behind its network
        port=int(environ.get("PORT", "8000")),
        worker_concurrency=int(environ.get("WORKER_CONCURRENCY", "2")),
        web_processes=serve.default_processes(environ),
    )
    for spec in processes:
        if spec.name == name:
            return spec
    raise ValueError(f"unknown process {name!r}; one of {', '.join(CONTAINER_PROCESSES)}")


# Secrets of the programs Flowgate runs that do not read <NAME>_FILE themselves: MLflow's
# backend store (its URL holds the password) and boto3's S3 keys. Flowgate's own settings
# read <NAME>_FILE in studio/env.py.
THIRD_PARTY_SECRETS = ("MLFLOW_BACKEND_STORE_URI", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def secrets_from_files(environ: Mapping[str, str]) -> dict[str, str]:
    """``NAME`` for each of ``THIRD_PARTY_SECRETS`` given as ``NAME_FILE`` and not set
    itself, read from the file."""
    values = {}
    for name in THIRD_PARTY_SECRETS:
        path = environ.get(f"{name}_FILE")
        if path and not environ.get(name):
            values[name] = Path(path).read_text().strip()
    return values


def main(argv: list[str]) -> None:
    """``python -m studio.processes NAME [ARGS...]``: replace this process with ``NAME``."""
    import os

    if not argv or argv[0] not in CONTAINER_PROCESSES:
        sys.stderr.write(f"usage: NAME [ARGS...], NAME one of {', '.join(CONTAINER_PROCESSES)}\n")
        sys.exit(2)
    spec = container_process(argv[0], os.environ)
    environment = spec.child_environment({**os.environ, **secrets_from_files(os.environ)})
    command = [*spec.command, *argv[1:]]
    os.execve(command[0], command, environment)  # noqa: S606 - the process becomes NAME


if __name__ == "__main__":
    main(sys.argv[1:])
