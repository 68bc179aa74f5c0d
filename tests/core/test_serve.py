"""``python -m studio.serve --processes N``: the web process as several uvicorn processes,
each listening on a socket of its own, under uvicorn's supervisor."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import psutil
import pytest

from studio import serve
from tests.support.processes import (
    REPOSITORY_ROOT,
    child_environment,
    free_port,
    stop_process_group,
    tail,
    wait_for_http,
)

pytestmark = pytest.mark.slow


def start(port: int, database_url: str, processes: int) -> tuple[subprocess.Popen, Path]:
    log = Path(tempfile.mkstemp(prefix="flowgate-serve-", suffix=".log")[1])
    with log.open("ab") as output:
        process = subprocess.Popen(
            serve.command(host="127.0.0.1", port=port, processes=processes),
            cwd=REPOSITORY_ROOT,
            env=child_environment(DATABASE_URL=database_url, DATABASE_POOL="true"),
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return process, log


@pytest.fixture
def two_processes(test_database_url) -> Iterator[tuple[subprocess.Popen, int, Path]]:
    port = free_port()
    process, log = start(port, test_database_url, processes=2)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", process=process, seconds=90, log=log)
        wait_for_listeners(process, port, count=2, log=log)
        yield process, port, log
    finally:
        stop_process_group(process)


def listeners(parent: subprocess.Popen, port: int) -> dict[int, int]:
    """Each of the parent's children listening on ``port``: its pid and how many
    connections it holds to that port."""
    found = {}
    for child in psutil.Process(parent.pid).children():
        try:
            connections = child.net_connections(kind="tcp")
        except psutil.Error:
            continue
        on_port = [c for c in connections if c.laddr and c.laddr.port == port]
        if any(c.status == psutil.CONN_LISTEN for c in on_port):
            found[child.pid] = sum(c.status == psutil.CONN_ESTABLISHED for c in on_port)
    return found


def wait_for_listeners(
    parent: subprocess.Popen, port: int, *, count: int, log: Path, gone: int = 0
) -> dict:
    """The listeners once there are ``count`` of them (``gone`` not among them)."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        found = listeners(parent, port)
        if len(found) == count and gone not in found:
            return found
        time.sleep(0.3)
    pytest.fail(f"{count} processes did not listen on {port}: {found}\n{tail(log)}")


def serving(port: int) -> list[psutil.Process]:
    """The processes running a ``studio.serve`` command for ``port``."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        line = " ".join(process.info["cmdline"] or [])
        if "studio.serve" in line and f"--port {port} " in f"{line} ":
            found.append(process)
    return found


def listening_socket(pid: int, port: int) -> str:
    """The kernel's name of the socket ``pid`` listens on ``port`` with (``socket:[inode]``)."""
    (listening,) = [
        c
        for c in psutil.Process(pid).net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    ]
    return os.readlink(f"/proc/{pid}/fd/{listening.fd}")


def test_each_process_listens_on_its_own_socket_and_connections_spread_over_them(two_processes):
    process, port, _log = two_processes
    # uvicorn's --workers would give both the one socket of their parent.
    assert len({listening_socket(pid, port) for pid in listeners(process, port)}) == 2
    with ExitStack() as held:
        clients = [
            held.enter_context(httpx.Client(base_url=f"http://127.0.0.1:{port}")) for _ in range(24)
        ]
        for client in clients:  # each keeps its connection open
            assert client.get("/healthz").status_code == 200
        connections = listeners(process, port)
    assert len(connections) == 2
    assert sum(connections.values()) == 24
    # The kernel hashes each connection to one socket: 24 land on both (all on one
    # happens with probability 2 ** -23).
    assert min(connections.values()) > 0, connections


def test_a_process_that_dies_is_replaced_and_the_port_keeps_answering(two_processes):
    process, port, log = two_processes
    first = set(listeners(process, port))
    os.kill(min(first), signal.SIGKILL)
    replaced = wait_for_listeners(process, port, count=2, log=log, gone=min(first))
    assert max(first) in replaced
    for _ in range(10):
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200


def test_sigterm_stops_every_process(two_processes):
    process, _port, log = two_processes
    children = psutil.Process(process.pid).children(recursive=True)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0, tail(log)
    _gone, alive = psutil.wait_procs(children, timeout=15)
    assert alive == []


@pytest.mark.parametrize("holder_reuses_port", [False, True])
def test_a_port_already_in_use_stops_it_at_once_with_a_message(
    test_database_url, holder_reuses_port
):
    port = free_port()
    with socket.socket() as holder:
        # A holder that set SO_REUSEPORT too (another studio of the same user) would not
        # stop the bind; it must not be joined either.
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, int(holder_reuses_port))
        holder.bind(("127.0.0.1", port))
        holder.listen()
        process, log = start(port, test_database_url, processes=2)
        try:
            assert process.wait(timeout=30) != 0
            assert serving(port) == []
        finally:
            stop_process_group(process)
    assert f"cannot listen on 127.0.0.1:{port}" in log.read_text(), tail(log)


def test_the_studio_runs_one_web_process_per_core_up_to_two_unless_told(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    assert serve.default_processes({}) == 2
    assert serve.default_processes({"WEB_PROCESSES": "5"}) == 5
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3})  # taskset -c 3
    assert serve.default_processes({}) == 1
