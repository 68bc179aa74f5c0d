"""The web process: uvicorn serving ``studio.asgi``, in one process or several.

``python -m studio.serve --host H --port P [--processes N] [--timeout-keep-alive S]``.

Several processes each listen on a socket of their own, bound with ``SO_REUSEPORT``, so
the kernel spreads new connections over them. uvicorn's ``--workers`` shares one listening
socket instead: whichever process wakes first accepts, and under keep-alive load one
process took 13 of 16 callers' connections while the other idled (README, Benchmarks,
fifth round). uvicorn's own supervisor still runs the processes (health checks, a new
process for one that dies, SIGHUP/SIGTTIN/SIGTTOU); only each child's socket is its own.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Mapping

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import multiprocess

APPLICATION = "studio.asgi:application"


def command(
    *, host: str, port: int, processes: int = 1, timeout_keep_alive: int | None = None
) -> list[str]:
    """The command line of the web process (``manage.py studio``, the container image,
    tests and benchmarks all run this one)."""
    line = [sys.executable, "-m", "studio.serve", "--host", host, "--port", str(port)]
    line += ["--processes", str(processes)]
    if timeout_keep_alive is not None:
        line += ["--timeout-keep-alive", str(timeout_keep_alive)]
    return line


def default_processes(environ: Mapping[str, str]) -> int:
    """How many web processes to run: ``WEB_PROCESSES``, else one per core up to two. One
    process's event loop and webhook batcher share one core (the GIL); a second process
    took sixteen callers from 2.3 to over 3 times one caller's runs/s on two cores."""
    if value := environ.get("WEB_PROCESSES"):
        return int(value)
    return max(1, min(2, _usable_cores()))


def _usable_cores() -> int:
    """The cores this process may run on (a CPU set or ``taskset`` counts), else all."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` that other processes may bind too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _answers(host: str, port: int) -> bool:
    target = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host  # noqa: S104
    try:
        socket.create_connection((target, port), timeout=0.5).close()
    except OSError:
        return False
    return True


class ReusePortProcess(multiprocess.Process):
    """A supervised uvicorn process that binds its own listening socket."""

    def target(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            own = reuse_port_socket(self.config.host, self.config.port)
        except OSError as error:
            sys.stderr.write(f"cannot listen on {self.config.host}:{self.config.port}: {error}\n")
            # The supervisor stops, rather than starting a new process that fails the same way.
            sys.exit(STARTUP_FAILURE)
        super().target([own])


def serve(*, host: str, port: int, processes: int, timeout_keep_alive: int) -> None:
    config = uvicorn.Config(
        APPLICATION,
        host=host,
        port=port,
        lifespan="off",
        access_log=False,
        timeout_keep_alive=timeout_keep_alive,
        workers=processes,
    )
    if processes == 1:
        uvicorn.Server(config).run()
        return
    # Fails here, once, when something else holds the port (no process is started). A
    # server of the same user that also set SO_REUSEPORT would not stop the bind: it is
    # found by connecting.
    try:
        reuse_port_socket(host, port).close()
    except OSError as error:
        raise SystemExit(f"cannot listen on {host}:{port}: {error}") from None
    if _answers(host, port):
        raise SystemExit(f"cannot listen on {host}:{port}: another server listens there")
    # uvicorn's supervisor makes its processes from this module-level name.
    multiprocess.Process = ReusePortProcess  # type: ignore[misc]
    multiprocess.Multiprocess(config, sockets=[]).run()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m studio.serve", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--processes", type=int, default=1, help="uvicorn processes")
    parser.add_argument("--timeout-keep-alive", type=int, default=5, help="seconds")
    arguments = parser.parse_args(argv)
    if arguments.processes < 1:
        parser.error("--processes must be 1 or more")
    serve(
        host=arguments.host,
        port=arguments.port,
        processes=arguments.processes,
        timeout_keep_alive=arguments.timeout_keep_alive,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
