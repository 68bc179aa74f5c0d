"""deploy/compose: Compose v2 itself (`docker-compose config`, which needs no daemon) checks
the file against the Compose specification; the tests then check what an operator relies on:
one beat, the migration first, a health check on every long-running service, secrets only
as files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import REPOSITORY_ROOT

COMPOSE = Path(sys.executable).parent / "docker-compose"
FLOWGATE_PROCESSES = {"web", "worker", "control", "beat", "streams"}
ONE_SHOTS = {"migrate", "s3-bucket"}
SECRET_WORDS = ("KEY", "PASSWORD", "TOKEN", "SECRET", "DATABASE_URL", "STORE_URI")


@pytest.fixture(scope="module")
def deploy_copy(tmp_path_factory) -> Path:
    """deploy/ copied aside, with secrets made by the kit's own script."""
    target = tmp_path_factory.mktemp("deploy") / "deploy"
    shutil.copytree(REPOSITORY_ROOT / "deploy", target, ignore=shutil.ignore_patterns("secrets"))
    subprocess.run([str(target / "compose" / "make-secrets.sh")], check=True, capture_output=True)
    return target


def rendered(deploy_copy: Path, *arguments: str, **environment: str) -> dict:
    result = subprocess.run(
        [str(COMPOSE), "-f", "compose.yaml", *arguments, "config", "--format", "json"],
        cwd=deploy_copy / "compose",
        env={"PATH": "/usr/bin:/bin", **environment},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_one_beat_and_as_many_workers_as_asked(deploy_copy):
    services = rendered(deploy_copy, FLOWGATE_WORKERS="5")["services"]
    assert services["beat"]["deploy"]["replicas"] == 1
    assert services["worker"]["deploy"]["replicas"] == 5
    assert rendered(deploy_copy)["services"]["worker"]["deploy"]["replicas"] == 2


def test_every_process_that_needs_the_schema_waits_for_the_migration(deploy_copy):
    services = rendered(deploy_copy)["services"]
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"
    for name in FLOWGATE_PROCESSES:
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        ), name
    assert services["mlflow"]["depends_on"]["s3-bucket"]["condition"] == (
        "service_completed_successfully"
    )


def test_every_long_running_service_has_a_health_check(deploy_copy):
    services = rendered(deploy_copy, "--profile", "opa")["services"]
    assert {"postgres", "redis", "s3", "mlflow", "models", "opa"} <= services.keys()
    for name, service in services.items():
        if name in ONE_SHOTS:
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
    assert services["worker"]["healthcheck"]["test"] == ["CMD", "flowgate", "worker-alive"]
    assert services["worker"]["environment"]["WORKER_HEARTBEAT_PATH"] == "/tmp/worker.alive"


def test_the_opa_server_runs_only_with_its_profile(deploy_copy):
    assert "opa" not in rendered(deploy_copy)["services"]
    opa = rendered(deploy_copy, "--profile", "opa")["services"]["opa"]
    assert opa["volumes"][0]["source"].endswith("deploy/opa/config.yaml")


def test_secrets_are_files_never_values_in_the_environment(deploy_copy):
    project = rendered(deploy_copy)
    for name, service in project["services"].items():
        for key in service.get("environment") or {}:
            if any(word in key for word in SECRET_WORDS):
                assert key.endswith("_FILE"), f"{name}: {key} is a secret given as a value"
    web = project["services"]["web"]
    assert {secret["source"] for secret in web["secrets"]} == {
        "database_url",
        "secret_key",
        "encryption_key",
        "metrics_token",
    }
    secrets = deploy_copy / "compose" / "secrets"
    password = (secrets / "postgres_password").read_text().strip()
    assert f":{password}@postgres:5432/flowgate" in (secrets / "database_url").read_text()
    assert f":{password}@postgres:5432/mlflow" in (secrets / "mlflow_database_url").read_text()
    s3 = json.loads((secrets / "s3_config.json").read_text())
    assert s3["identities"][0]["credentials"][0]["secretKey"] == (
        (secrets / "s3_secret_key").read_text().strip()
    )


def test_make_secrets_never_replaces_a_secret_that_exists(deploy_copy):
    key = deploy_copy / "compose" / "secrets" / "encryption_key"
    before = key.read_text()
    subprocess.run(
        [str(deploy_copy / "compose" / "make-secrets.sh")], check=True, capture_output=True
    )
    assert key.read_text() == before
