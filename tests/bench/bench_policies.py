"""Policy evaluation latency: what an evaluation costs the app, embedded and through OPA's API.

Run: ``python tests/bench/bench_policies.py [--iterations N] [--repeats R]``. Starts the
OPA-compatible test server (tests/policies/opa_stub_server.py, regorus behind OPA's REST
API) on a loopback port, then, for every shipped policy's test inputs and for the publish
gate on the gallery's flows (the largest inputs a gate sees in the demo), measures:

- ``engine.evaluate`` on the embedded backend: what a gate or a policy block pays (bounds,
  JSON size check, regorus, result conversion, the Decision) — the figure the target is for;
- regorus alone (``set_input`` + ``eval_rule``, as the backend calls them), to show what
  the wrapper adds;
- ``engine.evaluate`` on the OPA REST backend (opa-python-client, HTTP to the server).

Each measurement cycles through the inputs; the whole set is repeated R times and the
median of the R p50s (and p99s) is reported, with the spread of the p50s. Prints a table and
writes tests/bench/results/policies.json. Figures, not asserts.
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

from apps.flows.gallery import GALLERY_DIR  # noqa: E402
from apps.policies.defaults import SHIPPED, shipped  # noqa: E402
from apps.policies.engine import (  # noqa: E402
    EmbeddedBackend,
    PolicySource,
    evaluate,
    new_regorus_engine,
)
from apps.policies.opa import OpaServerBackend  # noqa: E402
from tests.policies.conftest import start_opa_stub  # noqa: E402
from tests.support.processes import free_port  # noqa: E402

Case = tuple[str, dict]


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def timed(call, cases: list[Case], iterations: int) -> list[float]:
    """Milliseconds per call, cycling through ``cases`` after one warm-up pass."""
    for rule, input in cases:
        call(rule, input)
    samples = []
    for index in range(iterations):
        rule, input = cases[index % len(cases)]
        started = time.perf_counter()
        call(rule, input)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def through_engine(policy: PolicySource, backend):
    def call(rule: str, input: dict) -> None:
        decision = evaluate(policy, rule, input, backend=backend)
        assert not decision.error, decision.error

    return call


def regorus_alone(policy: PolicySource):
    engine = new_regorus_engine(policy.source, max_source_bytes=len(policy.source.encode()))

    def call(rule: str, input: dict) -> None:
        engine.set_input(input)
        engine.eval_rule(f"data.{policy.package}.{rule}")

    return call


def workloads() -> list[tuple[str, PolicySource, list[Case]]]:
    """(label, policy, cases): each shipped policy on its own test inputs, and the publish
    gate on the gallery's flows as the app sends them."""
    loads = [
        (
            item.slug,
            PolicySource.from_text(slug=item.slug, source=item.source),
            [(test.rule, test.input) for test in item.tests],
        )
        for item in SHIPPED
    ]
    gate = shipped("flow_publish")
    gallery = [
        (
            "decision",
            {
                "flow": {"slug": path.name.removesuffix(".flow.json")},
                "definition": json.loads(path.read_text()),
                "actor": "builder",
                "actor_role": "builder",
            },
        )
        for path in sorted(GALLERY_DIR.glob("*.flow.json"))
    ]
    loads.append(
        (
            "flow_publish (gallery flows)",
            PolicySource.from_text(slug=gate.slug, source=gate.source),
            gallery,
        )
    )
    return loads


def summary(repeats: list[list[float]]) -> dict:
    p50s = [statistics.median(samples) for samples in repeats]
    return {
        "p50_ms": round(statistics.median(p50s), 4),
        "p99_ms": round(statistics.median(percentile(samples, 0.99) for samples in repeats), 4),
        "p50_each_repeat_ms": [round(value, 4) for value in p50s],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()
    port = free_port()
    server = start_opa_stub(port)
    rows = []
    try:
        embedded = EmbeddedBackend()
        opa = OpaServerBackend(f"http://127.0.0.1:{port}")
        for label, policy, cases in workloads():
            measured = {"embedded": [], "regorus": [], "opa-rest": []}
            for _ in range(arguments.repeats):
                measured["embedded"].append(
                    timed(through_engine(policy, embedded), cases, arguments.iterations)
                )
                measured["regorus"].append(
                    timed(regorus_alone(policy), cases, arguments.iterations)
                )
                measured["opa-rest"].append(
                    timed(through_engine(policy, opa), cases, max(200, arguments.iterations // 10))
                )
            rows.append(
                {
                    "policy": label,
                    "inputs": len(cases),
                    **{name: summary(repeats) for name, repeats in measured.items()},
                }
            )
    finally:
        server.terminate()
        server.wait(timeout=5)
    header = (
        f"{'policy':<30}{'embedded p50':>14}{'p99':>8}{'regorus p50':>13}{'OPA p50':>9}{'p99':>8}"
    )
    print(header + "   (ms; median of the repeats' p50/p99)")
    for row in rows:
        print(
            f"{row['policy']:<30}{row['embedded']['p50_ms']:>14.4f}{row['embedded']['p99_ms']:>8.3f}"
            f"{row['regorus']['p50_ms']:>13.4f}{row['opa-rest']['p50_ms']:>9.3f}"
            f"{row['opa-rest']['p99_ms']:>8.3f}"
        )
    results = ROOT / "tests" / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "policies.json").write_text(
        json.dumps(
            {
                "iterations": arguments.iterations,
                "repeats": arguments.repeats,
                "python": sys.version.split()[0],
                "rows": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
