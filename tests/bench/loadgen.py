"""Cheap load generators for the webhook benchmarks, so that they measure the server and
not the sender (the machine's cores are shared between them).

- Closed loop (N callers, each sending its next request when its answer came): ``wrk``
  (C, epoll) with a Lua script for the method, body and headers, stopped after a count of
  answers; latency percentiles from its histogram, answers counted by status and checked
  for an expected piece of body. Where wrk is missing it is installed with apt-get when
  this runs as root; otherwise it says so and falls back to Python threads with httpx
  (``"sender": "httpx-threads"`` in the figures: those cost the machine about 2 CPU-ms
  per request).
- Open loop at a fixed rate (``open_loop``): this file run as a script in a process of its
  own, asyncio on uvloop over keep-alive sockets writing pre-built HTTP/1.1 requests and
  reading answers with minimal parsing. Sends are scheduled by the clock, never by the
  answers: a request due while every connection waits for an answer opens another
  connection (up to ``--max-connections``), and the figures say how late sends were
  against the schedule. End-to-end times start at each request's scheduled time.

Both run as child processes of the bench; their CPU is read from the kernel when they
are reaped (``wait4``), so it is reported apart from the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit


def run_child(
    argv: list[str], timeout: float, interrupt_on: str | None = None
) -> tuple[str, float]:
    """Run ``argv`` to its end: its standard output and the CPU seconds (user + system)
    it spent, read from the kernel as it is reaped (``wait4``). A line of its output that
    starts with ``interrupt_on`` gets it a SIGINT (wrk's way to end a run early)."""
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr)
        assert process.stdout is not None
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        try:
            lines = []
            for line in process.stdout:
                lines.append(line)
                if interrupt_on and line.startswith(interrupt_on.encode()):
                    process.send_signal(signal.SIGINT)
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode:
            stderr.seek(0)
            raise RuntimeError(
                f"{argv[0]} exited {process.returncode}: {stderr.read().decode()[-2000:]}"
            )
        return b"".join(lines).decode(), usage.ru_utime + usage.ru_stime


# --- closed loop: wrk ------------------------------------------------------------------

WRK_SCRIPT = """
-- Written by tests/bench/loadgen.py: a request, a count of answers to stop after, and
-- the figures printed as one line of JSON at the end.
wrk.method = %(method)s
wrk.body = %(body)s
%(headers)s
local stop_after = %(count)d
local expect = %(expect)s
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  answered = 0
  unexpected = 0
  statuses = {}
end

function response(status, headers, body)
  answered = answered + 1
  statuses[tostring(status)] = (statuses[tostring(status)] or 0) + 1
  if expect ~= "" and not string.find(body or "", expect, 1, true) then
    unexpected = unexpected + 1
  end
  if answered == stop_after then
    -- The thread stops here; wrk's main thread sleeps out --duration unless told
    -- (SIGINT, sent by loadgen.py on reading this line).
    wrk.thread:stop()
    io.write("LOADGEN-STOPPED\\n")
    io.stdout:flush()
  end
end

function done(summary, latency, requests)
  local statuses, unexpected = {}, 0
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      statuses[status] = (statuses[status] or 0) + n
    end
    unexpected = unexpected + thread:get("unexpected")
  end
  local parts = {}
  for status, n in pairs(statuses) do
    table.insert(parts, string.format('"%%s": %%d', status, n))
  end
  local e = summary.errors
  io.write(string.format(
    '\\nLOADGEN {"requests": %%d, "duration_us": %%d, "statuses": {%%s}, "unexpected": %%d, '
    .. '"errors": {"connect": %%d, "read": %%d, "write": %%d, "timeout": %%d}, '
    .. '"latency_us": {"p50": %%d, "p99": %%d, "mean": %%.1f, "max": %%d}}\\n',
    summary.requests, summary.duration, table.concat(parts, ", "), unexpected,
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean, latency.max))
end
"""


def _lua(text: str) -> str:
    """A Lua string literal (long brackets: no escapes inside)."""
    level = "=" * 4
    while f"]{level}]" in text:
        level += "="
    return f"[{level}[{text}]{level}]"


def wrk_path() -> str | None:
    """wrk's path; installed with apt-get (Debian package ``wrk``) when missing and this
    runs as root, None where it cannot be had."""
    found = shutil.which("wrk")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        if not found:
            print(
                "loadgen: wrk is not installed (apt-get install wrk, as root); "
                "falling back to Python threads with httpx, which cost ~2 CPU-ms a request",
                file=sys.stderr,
            )
        return found
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "wrk"], check=False, stdout=subprocess.DEVNULL
    )
    return shutil.which("wrk")


def closed_loop(
    url: str,
    path: str,
    *,
    count: int,
    connections: int,
    body: dict | None = None,
    expect: str = "",
    timeout: float = 600,
) -> dict:
    """``count`` requests from ``connections`` callers, each with its own keep-alive
    connection, sending its next request when its answer came (POST of ``body`` as JSON,
    GET without). Runs/s, latency (p50/p99/mean ms), answers by status, answers without
    ``expect`` in their body, and the sender's CPU seconds."""
    wrk = wrk_path()
    if wrk is None:
        return _httpx_closed_loop(url, path, count, connections, body, expect)
    headers = ""
    if body is not None:
        headers = 'wrk.headers["Content-Type"] = "application/json"'
    script = WRK_SCRIPT % {
        "method": _lua("POST" if body is not None else "GET"),
        "body": _lua(json.dumps(body)) if body is not None else "nil",
        "headers": headers,
        "count": count,
        "expect": _lua(expect),
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="loadgen-") as lua:
        lua.write(script)
        lua.flush()
        # One thread serves all the connections (epoll); --duration only bounds a run
        # whose count never comes.
        output, cpu = run_child(
            [wrk, "--threads", "1", "--connections", str(connections), "--duration",
             f"{int(timeout)}s", "--timeout", "60s", "--script", lua.name, url + path],
            timeout=timeout + 30, interrupt_on="LOADGEN-STOPPED",
        )  # fmt: skip
    figures = json.loads(output.rsplit("LOADGEN ", 1)[1])
    latency = figures["latency_us"]
    requests = figures["requests"]
    return {
        "sender": "wrk",
        "requests": requests,
        "runs_per_second": round(requests / (figures["duration_us"] / 1e6), 1),
        "latency": {
            "n": requests,
            "p50_ms": round(latency["p50"] / 1000, 2),
            "p99_ms": round(latency["p99"] / 1000, 2),
            "mean_ms": round(latency["mean"] / 1000, 2),
        },
        "statuses": figures["statuses"],
        "unexpected_answers": figures["unexpected"],
        "errors": {k: v for k, v in figures["errors"].items() if v},
        "sender_cpu_seconds": round(cpu, 4),
        "sender_cpu_ms_per_request": round(cpu * 1000 / max(1, requests), 3),
    }


def _httpx_closed_loop(
    url: str, path: str, count: int, connections: int, body: dict | None, expect: str
) -> dict:
    """The fallback: ``connections`` threads of this process, each with an httpx client."""
    import statistics
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    local, samples = threading.local(), []
    statuses: collections.Counter[str] = collections.Counter()
    unexpected = 0

    def one(_: int) -> float:
        nonlocal unexpected
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=url, timeout=60)
        started = time.perf_counter()
        response = client.get(path) if body is None else client.post(path, json=body)
        elapsed = (time.perf_counter() - started) * 1000
        statuses[str(response.status_code)] += 1
        if expect and expect not in response.text:
            unexpected += 1
        return elapsed

    cpu = time.process_time()  # this process's, threads included
    with ThreadPoolExecutor(connections) as pool:
        list(pool.map(one, range(connections)))  # each caller connects before the clock
        statuses.clear()
        unexpected = 0
        started = time.perf_counter()
        samples = list(pool.map(one, range(count)))
        elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    ordered = sorted(samples)
    return {
        "sender": "httpx-threads",
        "requests": count,
        "runs_per_second": round(count / elapsed, 1),
        "latency": {
            "n": count,
            "p50_ms": round(ordered[int(0.5 * count)], 2),
            "p99_ms": round(ordered[min(count - 1, int(0.99 * count))], 2),
            "mean_ms": round(statistics.fmean(samples), 2),
        },
        "statuses": dict(statuses),
        "unexpected_answers": unexpected,
        "errors": {},
        "sender_cpu_seconds": round(cpu, 4),
        "sender_cpu_ms_per_request": round(cpu * 1000 / count, 3),
    }


# --- open loop: requests at a fixed rate -------------------------------------------------


def open_loop(
    url: str,
    path: str,
    *,
    rate: float,
    seconds: float,
    body: str,
    cycle: int = 1,
    connections: int = 32,
    max_connections: int = 512,
    run_header: str = "",
    timeout: float = 600,
) -> dict:
    """POST ``rate * seconds`` requests of ``body`` (JSON; ``{n}`` in it becomes the
    request's index modulo ``cycle``) at a fixed rate, from a process of their own (this
    file as a script). Returns the sender's figures (see ``OpenLoop.run``), with
    ``sent``: the value of each accepted answer's ``run_header`` → the request's scheduled
    time (``time.time()``), and the sender's CPU seconds as a whole process."""
    output, cpu = run_child(
        [sys.executable, str(Path(__file__).resolve()), "--url", url + path,
         "--rate", str(rate), "--seconds", str(seconds), "--body", body,
         "--cycle", str(cycle), "--connections", str(connections),
         "--max-connections", str(max_connections), "--run-header", run_header],
        timeout=timeout,
    )  # fmt: skip
    figures = json.loads(output)
    figures["sender_process_cpu_seconds"] = round(cpu, 4)
    return figures


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request in flight at a time (no pipelining)."""

    def __init__(self, sender: OpenLoop) -> None:
        self.sender = sender
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.index = -1  # the request in flight, -1 when idle
        self.written = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, index: int) -> None:
        assert self.transport is not None
        self.index = index
        self.written = time.perf_counter()
        self.sender.written(index)
        self.transport.write(self.sender.requests[index])

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        start = head.find(b"\r\ncontent-length:")
        if start >= 0:
            stop = head.find(b"\r\n", start + 2)
            length = int(head[start + 17 : stop if stop >= 0 else len(head)])
            if len(self.buffer) < end + 4 + length:
                return
            del self.buffer[: end + 4 + length]
        elif b"\r\ntransfer-encoding: chunked" in head:
            last = self.buffer.find(b"\r\n0\r\n\r\n", end)
            if last < 0:
                return
            del self.buffer[: last + 7]
        else:
            del self.buffer[: end + 4]  # no body (a 204, say)
        run = ""
        if self.sender.run_header:
            start = head.find(self.sender.run_header)
            if start >= 0:
                start += len(self.sender.run_header)
                stop = head.find(b"\r\n", start)
                run = head[start : stop if stop >= 0 else len(head)].strip().decode()
        index, self.index = self.index, -1
        self.sender.answered(self, index, int(head[9:12]), run, time.perf_counter() - self.written)

    def connection_lost(self, exc: Exception | None) -> None:
        self.sender.lost(self)


class OpenLoop:
    """Sends ``requests`` at ``rate`` per second by the clock (a timer at each one's due
    time, then every request due is sent at once): a request due while every connection
    waits for its answer takes the next connection freed, and another one is opened
    meanwhile (up to ``max_connections``). ``lag_ms`` says how late the writes were
    against the schedule, ``sent_per_second`` is the rate of the writes (below the target
    where the server held every connection)."""

    def __init__(
        self,
        host: str,
        port: int,
        requests: list[bytes],
        rate: float,
        connections: int,
        max_connections: int,
        run_header: str,
    ) -> None:
        self.host, self.port = host, port
        self.requests, self.rate = requests, rate
        self.connections, self.max_connections = connections, max_connections
        self.run_header = f"\r\n{run_header.lower()}:".encode() if run_header else b""
        self.idle: collections.deque[_Connection] = collections.deque()
        self.waiting: collections.deque[int] = collections.deque()
        self.opened = self.opening = self.retried = 0
        self.statuses: collections.Counter[str] = collections.Counter()
        self.sent: dict[str, float] = {}
        self.answers: list[float] = []
        self.lags: list[float] = []
        self.scheduled = 0.0
        self.outstanding = len(requests)
        self.finished: asyncio.Future[None] | None = None
        self.sending: asyncio.Future[float] | None = None
        self.begin = self.last_write = 0.0
        self.next = 0  # the next request to send
        self.waited = 0  # requests due while every connection was busy
        self.most = 0  # connections open at once, at the most
        self.loop: asyncio.AbstractEventLoop | None = None

    def connect_soon(self) -> None:
        self.opening += 1  # now, not when the task starts: the limit holds within a tick
        asyncio.get_running_loop().create_task(self.connect())

    async def connect(self) -> None:
        try:
            _, connection = await asyncio.get_running_loop().create_connection(
                lambda: _Connection(self), self.host, self.port
            )
        finally:
            self.opening -= 1
        self.opened += 1
        self.most = max(self.most, self.opened)
        self.free(connection)

    def free(self, connection: _Connection) -> None:
        if self.waiting:
            connection.send(self.waiting.popleft())
        else:
            self.idle.append(connection)

    def written(self, index: int) -> None:
        """Request ``index`` is being written: how late against its due time."""
        assert self.loop is not None
        self.last_write = self.loop.time()
        self.lags.append((self.last_write - self.begin - index / self.rate) * 1000)

    def dispatch(self, index: int) -> None:
        if self.idle:
            self.idle.popleft().send(index)  # the longest idle: every connection stays warm
            return
        self.waiting.append(index)
        self.waited += 1
        if self.opened + self.opening < self.max_connections:
            self.connect_soon()

    def answered(
        self, connection: _Connection, index: int, status: int, run: str, took: float
    ) -> None:
        self.statuses[str(status)] += 1
        self.answers.append(took * 1000)
        if status < 300 and run:
            self.sent[run] = self.scheduled + index / self.rate
        self.free(connection)
        self.outstanding -= 1
        if not self.outstanding and self.finished is not None:
            self.finished.set_result(None)

    def lost(self, connection: _Connection) -> None:
        """The server closed a connection (its keep-alive timeout, say): a request in
        flight on it goes again on another one."""
        self.opened -= 1
        if connection in self.idle:
            self.idle.remove(connection)
        if connection.index >= 0:
            self.retried += 1
            self.waiting.appendleft(connection.index)
            self.connect_soon()

    def tick(self) -> None:
        """Send every request now due, then come back when the next one is (a timer,
        not a coroutine's sleep: less work per request)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        while self.next < len(self.requests):
            due = self.begin + self.next / self.rate
            if due > now:
                loop.call_at(due, self.tick)
                return
            self.dispatch(self.next)
            self.next += 1
        assert self.sending is not None
        self.sending.set_result(now - self.begin)

    async def run(self) -> dict:
        loop = self.loop = asyncio.get_running_loop()
        self.finished, self.sending = loop.create_future(), loop.create_future()
        for _ in range(self.connections):
            self.opening += 1
            await self.connect()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.begin, self.scheduled = loop.time(), time.time()
        self.tick()
        await self.sending
        await self.finished
        send_seconds = self.last_write - self.begin
        answered_seconds = loop.time() - self.begin
        end = resource.getrusage(resource.RUSAGE_SELF)
        cpu = end.ru_utime + end.ru_stime - usage.ru_utime - usage.ru_stime
        count = len(self.requests)
        return {
            "sender": "loadgen-open-loop (asyncio on uvloop, raw keep-alive sockets)",
            "requests": count,
            "target_rate": self.rate,
            "sent_per_second": round(count / send_seconds, 1) if send_seconds else None,
            "send_seconds": round(send_seconds, 3),
            "answered_per_second": round(count / answered_seconds, 1),
            "lag_ms": _summary(self.lags),
            "answer_ms": _summary(self.answers),
            "statuses": dict(self.statuses),
            "refused": sum(n for status, n in self.statuses.items() if int(status) >= 300),
            "connections": self.most,
            "waited_for_a_connection": self.waited,
            "retried": self.retried,
            "sender_cpu_seconds": round(cpu, 4),
            "sender_cpu_ms_per_request": round(cpu * 1000 / count, 4),
            "sent": self.sent,
        }


def _summary(samples: list[float]) -> dict:
    ordered = sorted(samples)
    if not ordered:
        return {"n": 0}
    return {
        "n": len(ordered),
        "p50_ms": round(ordered[len(ordered) // 2], 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
        "max_ms": round(ordered[-1], 2),
    }


def _requests(url: str, body: str, cycle: int, count: int) -> list[bytes]:
    """Each request's bytes, built before the clock starts: what httpx sends for
    ``post(url, json=...)`` less its User-Agent and Accept-Encoding."""
    parts = urlsplit(url)
    head = (
        f"POST {parts.path}{'?' + parts.query if parts.query else ''} HTTP/1.1\r\n"
        f"Host: {parts.netloc}\r\nAccept: */*\r\nConnection: keep-alive\r\n"
        "Content-Type: application/json\r\nContent-Length: "
    ).encode()
    built = []
    for index in range(count):
        payload = body.replace("{n}", str(index % cycle)).encode()
        built.append(head + str(len(payload)).encode() + b"\r\n\r\n" + payload)
    return built


def main() -> None:
    parser = argparse.ArgumentParser(description="open-loop POSTs at a fixed rate")
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--body", default="{}", help="JSON; {n} is the index modulo --cycle")
    parser.add_argument("--cycle", type=int, default=1)
    parser.add_argument("--connections", type=int, default=32, help="opened before the clock")
    parser.add_argument("--max-connections", type=int, default=512)
    parser.add_argument("--run-header", default="", help="the answer header naming the run")
    arguments = parser.parse_args()
    try:
        import uvloop
    except ImportError:  # plain asyncio: slower, still by the clock
        uvloop = None  # type: ignore[assignment]
    parts = urlsplit(arguments.url)
    sender = OpenLoop(
        parts.hostname or "127.0.0.1",
        parts.port or 80,
        _requests(arguments.url, arguments.body, arguments.cycle,
                  int(arguments.rate * arguments.seconds)),
        arguments.rate,
        arguments.connections,
        arguments.max_connections,
        arguments.run_header,
    )  # fmt: skip
    gc.disable()  # a few thousand small objects: no collection pauses while sending
    figures = uvloop.run(sender.run()) if uvloop else asyncio.run(sender.run())
    if uvloop is None:
        figures["sender"] = figures["sender"].replace("uvloop", "asyncio")
    json.dump(figures, sys.stdout)


if __name__ == "__main__":
    main()
