"""The image file (deploy/image): linted by hadolint, its pins cover every dependency, and
the entry point starts each process with the command studio/processes.py defines."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from studio.processes import CONTAINER_PROCESSES, container_process, secrets_from_files
from tests.support.http_server import CountingServer
from tests.support.processes import REPOSITORY_ROOT

IMAGE = REPOSITORY_ROOT / "deploy" / "image"
BIN = Path(sys.executable).parent


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.parametrize("containerfile", ["Containerfile", "Containerfile.models-cuda"])
def test_hadolint_passes_the_image_files(containerfile):
    result = subprocess.run(
        [str(BIN / "hadolint"), str(IMAGE / containerfile)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_constraints_pin_every_dependency_of_the_project():
    project = tomllib.loads((REPOSITORY_ROOT / "pyproject.toml").read_text())["project"]
    wanted = {
        normalized(re.split(r"[\[<>=~!; ]", spec, maxsplit=1)[0])
        for spec in project["dependencies"]
    }
    pins = {}
    for line in (IMAGE / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[normalized(name)] = version
    assert wanted - pins.keys() == set(), "run deploy/image/lock.sh"
    assert all(pins.values()), "every constraint is an exact version"


def test_the_image_runs_as_an_unprivileged_user_with_tini_as_pid_1():
    text = (IMAGE / "Containerfile").read_text()
    final_stage = text.rsplit("\nFROM ", 1)[1]
    assert re.search(r"^USER 10001:10001$", final_stage, re.M)
    assert 'ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/flowgate"]' in final_stage
    assert "npm ci" in text and "vite build" in text
    assert "--constraint constraints.txt" in text


def test_each_container_process_listens_on_every_address_of_its_container():
    environ = {"PORT": "8080", "WORKER_CONCURRENCY": "3", "MODELS_PORT": "3999"}
    web = container_process("web", environ)
    assert web.command[-6:-2] == ["--host", "0.0.0.0", "--port", "8080"]
    assert web.environment == {"DATABASE_POOL": "true"}
    assert "--concurrency=3" in container_process("worker", environ).command
    assert container_process("beat", environ).command[-2:] == ["beat", "--loglevel=INFO"]
    assert "--pool=solo" in container_process("control", environ).command
    assert container_process("streams", environ).command[-2:] == ["streams", "consume"]
    models = container_process("models", {**environ, "MLFLOW_TRACKING_URI": "http://ml:5000"})
    assert models.command[-4:] == ["--host", "0.0.0.0", "--port", "3999"]
    assert models.environment["MLFLOW_TRACKING_URI"] == "http://ml:5000"
    assert container_process("migrate", environ).command[-2:] == ["migrate", "--noinput"]
    assert "--serve-artifacts" in container_process("mlflow", environ).command
    assert set(CONTAINER_PROCESSES) == {
        "web",
        "worker",
        "control",
        "beat",
        "streams",
        "models",
        "mlflow",
        "migrate",
    }
    with pytest.raises(ValueError, match="unknown process 'shell'"):
        container_process("shell", environ)


def test_secrets_from_files_serve_the_programs_that_do_not_read_them(tmp_path):
    (tmp_path / "key").write_text("s3cret\n")
    environ = {
        "AWS_SECRET_ACCESS_KEY_FILE": str(tmp_path / "key"),
        "AWS_ACCESS_KEY_ID_FILE": str(tmp_path / "key"),
        "AWS_ACCESS_KEY_ID": "given",
        # Flowgate's own settings read their files themselves; other *_FILE are not secrets.
        "SECRET_KEY_FILE": str(tmp_path / "key"),
        "SOMETHING_FILE": str(tmp_path / "not-there"),
    }
    assert secrets_from_files(environ) == {"AWS_SECRET_ACCESS_KEY": "s3cret"}


def run_entrypoint(*arguments: str, **environment: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", str(IMAGE / "entrypoint.sh"), *arguments],
        cwd=REPOSITORY_ROOT,
        env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", **environment},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_entrypoint_probes_as_the_proxy_would_and_fails_on_an_error_status():
    with CountingServer(statuses=[200, 503]) as server:
        assert run_entrypoint("http-ok", f"{server.url}/readyz").returncode == 0
        assert run_entrypoint("http-ok", f"{server.url}/readyz").returncode == 1
    headers = server.requests[0]["headers"]
    assert headers["Host"] == "localhost"
    assert headers["X-Forwarded-Proto"] == "https"


def test_the_entrypoint_refuses_an_unknown_process_and_probes_a_worker(tmp_path):
    result = run_entrypoint("python", "-m", "studio.processes", "shell")
    assert result.returncode == 2
    assert "one of web, worker, control, beat" in result.stderr
    probe = run_entrypoint("worker-alive", WORKER_HEARTBEAT_PATH=str(tmp_path / "none"))
    assert probe.returncode == 1
    assert "no heartbeat yet" in probe.stderr
