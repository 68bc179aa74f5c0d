"""A real MLflow server and a real BentoML model service, started once per test session
(a pytest plugin, loaded by ``tests/conftest.py``: the model tests and the browser tests
share one stack).

``mlflow_server`` runs the studio's own MLflow process spec (sqlite and artifacts in a temp
dir) on a free port; ``trained_models`` trains and registers the demo ``claim-fraud`` model
(two versions, small data) in it (``language_models`` the toy language model,
``transformers_language_model`` the GPT-2-style one); ``model_service`` runs the studio's BentoML process spec
against that registry. MLflow and BentoML start in parallel; both are stopped at the end.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from apps.mlmodels.training import (
    CLAIM_FRAUD,
    SUPPORT_WRITER,
    SUPPORT_WRITER_GPT,
    TrainedVersion,
    train_demo_models,
)
from studio.processes import ProcessSpec, mlflow_process, model_service_process
from tests.support.processes import (
    REPOSITORY_ROOT,
    child_environment,
    free_ports,
    stop_process_group,
    wait_for_http,
)


@dataclass
class Started:
    url: str
    process: subprocess.Popen
    log: Path
    started_at: float

    def wait(self, path: str, seconds: float = 120) -> float:
        wait_for_http(f"{self.url}{path}", process=self.process, seconds=seconds, log=self.log)
        return time.monotonic() - self.started_at


def _start(spec: ProcessSpec, url: str) -> Started:
    log = Path(tempfile.mkstemp(prefix=f"flowgate-{spec.name}-", suffix=".log")[1])
    with log.open("ab") as output:
        process = subprocess.Popen(
            spec.command,
            cwd=REPOSITORY_ROOT,
            env=child_environment(**spec.environment),
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Started(url, process, log, time.monotonic())


@dataclass
class ModelStack:
    mlflow: Started
    service: Started
    mlflow_seconds: float = 0.0
    service_seconds: float = 0.0


@pytest.fixture(scope="session")
def model_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelStack]:
    mlflow_port, service_port = free_ports(2)
    mlflow_url = f"http://127.0.0.1:{mlflow_port}"
    service_url = f"http://127.0.0.1:{service_port}"
    var_dir = tmp_path_factory.mktemp("mlflow-var")
    mlflow = _start(mlflow_process(tracking_uri=mlflow_url, var_dir=var_dir), mlflow_url)
    service = _start(
        model_service_process(service_url=service_url, tracking_uri=mlflow_url), service_url
    )
    stack = ModelStack(mlflow, service)
    try:
        stack.mlflow_seconds = mlflow.wait("/health")
        stack.service_seconds = service.wait("/readyz")
        yield stack
    finally:
        stop_process_group(service.process)
        stop_process_group(mlflow.process)


@pytest.fixture(scope="session")
def trained_models(model_stack: ModelStack) -> list[TrainedVersion]:
    return train_demo_models(tracking_uri=model_stack.mlflow.url, names=(CLAIM_FRAUD,), rows=400)


@pytest.fixture(scope="session")
def language_models(model_stack: ModelStack) -> list[TrainedVersion]:
    """The demo's toy language model, two versions (production = 1), built here."""
    return train_demo_models(tracking_uri=model_stack.mlflow.url, names=(SUPPORT_WRITER,), rows=300)


@pytest.fixture(scope="session")
def transformers_language_model(model_stack: ModelStack) -> TrainedVersion:
    """The demo's small GPT-2-style model (transformers flavor), trained here in the model
    service's environment (.venv-models) and registered, production = 1."""
    trained = train_demo_models(
        tracking_uri=model_stack.mlflow.url, names=(SUPPORT_WRITER_GPT,), rows=300
    )
    if not trained:
        pytest.fail("the model service's environment lacks torch: run scripts/bootstrap.sh")
    # Its first load imports torch and transformers in the service (seconds, more on a busy
    # machine, possibly past the service's 30 s request timeout): load it once here.
    request = {"model": SUPPORT_WRITER_GPT, "prompt": "user: hi", "max_tokens": 1}
    for _ in range(4):
        answer = httpx.post(f"{model_stack.service.url}/v1/completions", json=request, timeout=90)
        if answer.status_code == 200:
            break
    return trained[0]


@pytest.fixture
def registry_settings(settings, model_stack: ModelStack, trained_models):  # type: ignore[no-untyped-def]
    """Point this process's settings at the test MLflow and model service."""
    settings.FLOWGATE = {
        **settings.FLOWGATE,
        "MLFLOW_TRACKING_URI": model_stack.mlflow.url,
        "MODEL_SERVICE_URL": model_stack.service.url,
    }
    return settings
