"""CPU per HTTP call of the engine's two SSRF-guarded clients, against a local sink.

Run: ``python tests/bench/bench_http_client.py [--calls 3000] [--rounds 3] [--threads 8]``.
The HTTP block's request (a POST of a small JSON body with an Idempotency-Key, 1 KiB
answer cap aside) is sent ``--calls`` times by ``--threads`` threads at once, over kept
connections, to ``sink.py`` under uvicorn answering at once; rounds alternate between
``httpx`` (``pooled_safe_client().request``, the block's client before ``safe_request``)
and ``kept`` (``safe_request``: http.client over connections each thread keeps). Reported
per round: this process's CPU milliseconds per call (the sink's apart) and the wall time.
A floor: the workers make these calls among everything else they do. Results go to
tests/bench/results/http_client.json; figures, not asserts.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.bench_io import sink_server  # sets Django up (bench_engine), so first

# isort: split

from apps.core.http import egress_allowed, pooled_safe_client, safe_request

HEADERS = {"Idempotency-Key": "run:node", "X-Correlation-ID": "run"}
MOST_BYTES = 5 * 1024 * 1024  # the block's cap


def clients(url: str) -> dict[str, Callable[[], object]]:
    def with_httpx() -> object:
        return pooled_safe_client().request(
            "POST", url, headers=HEADERS, json={"n": 1}, timeout=10, extensions={}
        )

    def kept() -> object:
        return safe_request(
            "POST", url, headers=HEADERS, json={"n": 1}, timeout=10, most_bytes=MOST_BYTES
        )

    return {"httpx": with_httpx, "kept": kept}


def measure(call: Callable[[], object], calls: int, threads: int) -> dict[str, float]:
    def each() -> None:
        with egress_allowed(["127.0.0.1"]):
            for _ in range(20):  # its connection and caches
                call()
            ready.wait()
            for _ in range(calls // threads):
                call()

    ready = threading.Event()
    workers = [threading.Thread(target=each) for _ in range(threads)]
    for worker in workers:
        worker.start()
    time.sleep(0.5)
    cpu, wall = time.process_time(), time.perf_counter()
    ready.set()
    for worker in workers:
        worker.join()
    sent = calls // threads * threads
    return {
        "cpu_ms_per_call": round((time.process_time() - cpu) * 1000 / sent, 3),
        "wall_s": round(time.perf_counter() - wall, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=8)
    arguments = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {"httpx": [], "kept": []}
    with sink_server(0) as (sink, _):
        for _ in range(arguments.rounds):
            for name, call in clients(f"{sink}/score").items():
                figures = measure(call, arguments.calls, arguments.threads)
                results[name].append(figures)
                print(name, figures, flush=True)
    output = Path(__file__).parent / "results" / "http_client.json"
    output.parent.mkdir(exist_ok=True)
    output.write_text(json.dumps({"threads": arguments.threads, **results}, indent=2))


if __name__ == "__main__":
    main()
