"""Helpers for tests that start real processes: free ports, database URLs, waiting for
HTTP, and checking that a process tree is really gone."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import quote

import httpx
import psutil

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]

# Servers started by tests listen on this range; override it when several people share a
# machine (each with their own range) with FLOWGATE_TEST_PORTS=8100-8199.
_PORT_RANGE = os.environ.get("FLOWGATE_TEST_PORTS", "8100-8199")


def free_port() -> int:
    """A loopback TCP port in the test range that nobody is listening on right now."""
    first, last = (int(part) for part in _PORT_RANGE.split("-"))
    for port in range(first, last + 1):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {_PORT_RANGE}")


def free_ports(count: int) -> list[int]:
    """``count`` different free loopback ports in the test range (held open together while
    they are chosen, so two servers started side by side do not get the same one)."""
    first, last = (int(part) for part in _PORT_RANGE.split("-"))
    probes, ports = [], []
    try:
        for port in range(first, last + 1):
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                probe.close()
                continue
            probes.append(probe)
            ports.append(port)
            if len(ports) == count:
                return ports
    finally:
        for probe in probes:
            probe.close()
    raise RuntimeError(f"fewer than {count} free ports in {_PORT_RANGE}")


def database_url(settings_dict: Mapping[str, object]) -> str:
    """The ``DATABASE_URL`` for a Django DATABASES entry (e.g. the pytest-django test
    database, so a subprocess sees what the tests committed)."""
    user = quote(str(settings_dict["USER"] or "postgres"), safe="")
    password = settings_dict.get("PASSWORD") or ""
    credentials = f"{user}:{quote(str(password), safe='')}" if password else user
    host = settings_dict["HOST"] or "127.0.0.1"
    port = settings_dict["PORT"] or 5432
    return f"postgres://{credentials}@{host}:{port}/{settings_dict['NAME']}"


def child_environment(**overrides: str) -> dict[str, str]:
    """The test process's environment for a child Django/Celery process, with test settings."""
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "studio.settings.test"}
    environment.update({"PYTHONUNBUFFERED": "1", **overrides})
    return environment


def wait_for_http(url: str, *, process: subprocess.Popen, seconds: float, log: Path) -> None:
    """Wait until ``url`` answers 200, failing early (with the log) if ``process`` dies."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}:\n{tail(log)}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {seconds}s:\n{tail(log)}")


@contextlib.contextmanager
def studio_web_server(database_url: str, port: int = 0, **environment: str) -> Iterator[str]:
    """The studio's web process (``python -m studio.serve``, as ``manage.py studio`` runs
    it) on ``port`` (default: a free loopback port), against ``database_url``; yields its
    base URL and stops it (its whole process group) on exit."""
    import tempfile

    from studio import serve

    port = port or free_port()
    log = Path(tempfile.mkstemp(prefix="flowgate-web-", suffix=".log")[1])
    with log.open("ab") as output:
        server = subprocess.Popen(
            serve.command(host="127.0.0.1", port=port),
            cwd=REPOSITORY_ROOT,
            env=child_environment(DATABASE_URL=database_url, **environment),
            stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", process=server, seconds=60, log=log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process_group(server)


def tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def stop_process_group(process: subprocess.Popen, *, grace: float = 20) -> None:
    """SIGTERM the process group ``process`` leads, then SIGKILL it after ``grace`` seconds."""
    if process.poll() is not None:
        return
    _signal_group(process, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        _signal_group(process, signal.SIGKILL)
        process.wait(timeout=10)


def kill_process_group(process: subprocess.Popen) -> None:
    """SIGKILL the whole process group at once, as a crash or an OOM kill would."""
    if process.poll() is None:
        _signal_group(process, signal.SIGKILL)
        process.wait(timeout=10)


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def still_running(processes: list[psutil.Process]) -> list[psutil.Process]:
    """Those of ``processes`` still alive (a zombie waiting to be reaped counts as ended)."""
    alive = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except psutil.NoSuchProcess:
            continue
    return alive
