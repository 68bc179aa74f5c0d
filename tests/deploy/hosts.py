"""Test hosts on one machine: Linux network namespaces joined by a bridge, made and removed
by the test itself (root and iproute2 needed).

``Network`` creates a switch namespace holding a bridge, then one namespace per host with a
veth pair: ``eth0`` in the host with its own address, the other end on the bridge. Nothing
is attached to the machine's own namespace, so the hosts reach each other and nothing else.
``host.run(command)`` starts a process inside a host (its own process group, log file);
``host.cut()`` / ``host.reconnect()`` take the host's link down and up again.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.processes import REPOSITORY_ROOT, child_environment, tail

SUBNET = "10.213.7"


def ip(*arguments: str) -> None:
    subprocess.run(["ip", *arguments], check=True, capture_output=True, text=True)


def namespaces_available() -> str | None:
    """Why this machine cannot make test hosts, or None when it can."""
    probe = f"fg-probe-{uuid.uuid4().hex[:6]}"
    try:
        ip("netns", "add", probe)
    except (subprocess.CalledProcessError, FileNotFoundError) as error:
        return f"ip netns add failed: {getattr(error, 'stderr', error)}"
    ip("netns", "del", probe)
    return None


@dataclass
class Started:
    name: str
    process: subprocess.Popen
    log: Path

    @property
    def output(self) -> str:
        return tail(self.log, 60)


@dataclass
class Host:
    name: str
    namespace: str
    address: str
    network: Network
    started: list[Started] = field(default_factory=list)

    def run(self, name: str, command: list[str], **environment: str) -> Started:
        log = self.network.directory / f"{self.name}-{name}.log"
        with log.open("ab") as output:
            process = subprocess.Popen(
                ["ip", "netns", "exec", self.namespace, *command],
                cwd=REPOSITORY_ROOT,
                env=child_environment(**environment),
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        started = Started(f"{self.name}/{name}", process, log)
        self.started.append(started)
        return started

    def call(self, command: list[str], timeout: float = 120, **environment: str) -> str:
        """Run ``command`` inside the host to completion; its standard output."""
        result = subprocess.run(
            ["ip", "netns", "exec", self.namespace, *command],
            cwd=REPOSITORY_ROOT,
            env=child_environment(**environment),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, f"{command} on {self.name}:\n{result.stderr[-3000:]}"
        return result.stdout

    def cut(self) -> None:
        ip("-n", self.namespace, "link", "set", "eth0", "down")

    def reconnect(self) -> None:
        ip("-n", self.namespace, "link", "set", "eth0", "up")


class Network:
    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:6]
        self.switch = f"fg-{self.tag}-sw"
        self.hosts: dict[str, Host] = {}
        self.directory = Path(tempfile.mkdtemp(prefix=f"flowgate-hosts-{self.tag}-"))
        self.directory.chmod(0o755)  # Postgres runs as its own user below it
        ip("netns", "add", self.switch)
        ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        ip("-n", self.switch, "link", "set", "br0", "up")

    def add(self, name: str) -> Host:
        number = len(self.hosts) + 2
        namespace = f"fg-{self.tag}-{name}"
        address = f"{SUBNET}.{number}"
        ip("netns", "add", namespace)
        ip(
            "-n",
            namespace,
            "link",
            "add",
            "eth0",
            "type",
            "veth",
            "peer",
            "name",
            f"p{number}",
            "netns",
            self.switch,
        )
        ip("-n", self.switch, "link", "set", f"p{number}", "master", "br0", "up")
        ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
        ip("-n", namespace, "link", "set", "eth0", "up")
        ip("-n", namespace, "link", "set", "lo", "up")
        host = Host(name, namespace, address, self)
        self.hosts[name] = host
        return host

    def close(self) -> None:
        """Stop every process (SIGTERM to all at once, SIGKILL to what is left after 5 s),
        then remove the hosts."""
        running = [s.process for host in self.hosts.values() for s in host.started]
        for signum in (signal.SIGTERM, signal.SIGKILL):
            for process in running:
                if process.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signum)
            deadline = time.monotonic() + 5
            while any(p.poll() is None for p in running) and time.monotonic() < deadline:
                time.sleep(0.1)
        for namespace in [*(host.namespace for host in self.hosts.values()), self.switch]:
            with contextlib.suppress(subprocess.CalledProcessError):
                ip("netns", "del", namespace)
        shutil.rmtree(self.directory, ignore_errors=True)

    def logs(self) -> str:
        return "\n".join(
            f"--- {started.name}\n{started.output}"
            for host in self.hosts.values()
            for started in host.started
        )


def wait_until(predicate, *, timeout: float, what: str, network: Network | None = None):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"{what}: not within {timeout}s\n{network.logs() if network else ''}")
