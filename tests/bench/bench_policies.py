"""Policy evaluation latency: embedded regorus vs the OPA REST path, for the shipped policies.

Run: ``python tests/bench/bench_policies.py [--iterations N]``. Starts the OPA-compatible
test server (tests/policies/opa_stub_server.py, regorus behind OPA's REST API) on a loopback
port, evaluates every shipped policy's test inputs through ``engine.evaluate`` on both
backends, prints p50/p99 and writes tests/bench/results/policies.json. Figures, not asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings.test")
os.environ.setdefault("RUST_BACKTRACE", "0")

import django  # noqa: E402

django.setup()

from apps.policies.defaults import SHIPPED  # noqa: E402
from apps.policies.engine import EmbeddedBackend, PolicySource, evaluate  # noqa: E402
from apps.policies.opa import OpaServerBackend  # noqa: E402
from tests.policies.conftest import start_opa_stub  # noqa: E402
from tests.support.processes import free_port  # noqa: E402

BENCH_PORT = free_port()


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(backend, policy: PolicySource, cases, iterations: int) -> list[float]:
    for rule, input in cases:  # warm the cache / push to the server
        evaluate(policy, rule, input, backend=backend)
    samples = []
    for index in range(iterations):
        rule, input = cases[index % len(cases)]
        started = time.perf_counter()
        decision = evaluate(policy, rule, input, backend=backend)
        samples.append((time.perf_counter() - started) * 1000)
        assert not decision.error, decision.error
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=5000)
    arguments = parser.parse_args()
    server = start_opa_stub(BENCH_PORT)
    rows = []
    try:
        backends = {
            "embedded": EmbeddedBackend(),
            "opa-rest": OpaServerBackend(f"http://127.0.0.1:{BENCH_PORT}"),
        }
        for shipped in SHIPPED:
            policy = PolicySource.from_text(slug=shipped.slug, source=shipped.source)
            cases = [(test.rule, test.input) for test in shipped.tests]
            for name, backend in backends.items():
                iterations = (
                    arguments.iterations
                    if name == "embedded"
                    else max(200, arguments.iterations // 10)
                )
                samples = measure(backend, policy, cases, iterations)
                rows.append(
                    {
                        "policy": shipped.slug,
                        "backend": name,
                        "iterations": iterations,
                        "p50_ms": round(statistics.median(samples), 4),
                        "p99_ms": round(percentile(samples, 0.99), 4),
                        "mean_ms": round(statistics.fmean(samples), 4),
                    }
                )
    finally:
        server.terminate()
        server.wait(timeout=5)
    print(f"{'policy':<18}{'backend':<10}{'n':>7}{'p50 ms':>10}{'p99 ms':>10}")
    for row in rows:
        print(
            f"{row['policy']:<18}{row['backend']:<10}{row['iterations']:>7}{row['p50_ms']:>10.4f}{row['p99_ms']:>10.4f}"
        )
    results = ROOT / "tests" / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "policies.json").write_text(
        json.dumps({"rows": rows, "python": sys.version.split()[0]}, indent=2)
    )


if __name__ == "__main__":
    main()
