"""What the expression budget costs: CEL evaluation in-process and in the bounded child.

Run: ``python tests/bench/bench_expressions.py [--iterations N]``. Measures, per call, the
p50 and p99 of ``expressions.evaluate`` for an expression without comprehension macros (runs
in-process), one with a macro (runs in the child process, under the budget), and the same
macro expression through the CEL library alone (the floor), on a claim-sized scope; and how
long a runaway expression takes to be stopped (about the budget). Writes
tests/bench/results/expressions.json. Figures, not asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings.test")

import django  # noqa: E402

django.setup()

import cel  # noqa: E402

from apps.blocks.expressions import ExpressionError, evaluate  # noqa: E402
from tests.security.runaway import RUNAWAY_EXPRESSION  # noqa: E402

SCOPE = {
    "trigger": {
        "body": {
            "amount": 1250,
            "lines": [{"sku": f"A-{index}", "amount": index * 10} for index in range(20)],
        }
    },
    "steps": {"score": {"output": {"risk": 0.42}}},
}
PLAIN = "trigger.body.amount > 1000 && steps.score.output.risk < 0.5"
MACRO = "trigger.body.lines.filter(l, l.amount > 100).size()"


def percentiles(call, iterations: int) -> dict[str, float]:
    for _ in range(20):
        call()
    samples = []
    for _ in range(iterations):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1_000_000)
    samples.sort()
    return {
        "p50_us": round(samples[len(samples) // 2], 1),
        "p99_us": round(samples[min(len(samples) - 1, int(0.99 * len(samples)))], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=2000)
    iterations = parser.parse_args().iterations
    program = cel.compile(MACRO)
    results = {
        "in_process_plain": percentiles(lambda: evaluate(PLAIN, SCOPE), iterations),
        "bounded_macro": percentiles(lambda: evaluate(MACRO, SCOPE), iterations),
        "cel_alone_macro": percentiles(lambda: program.execute(SCOPE), iterations),
    }
    started = time.perf_counter()
    try:
        evaluate(RUNAWAY_EXPRESSION, {})
    except ExpressionError as error:
        results["runaway"] = {
            "stopped_after_s": round(time.perf_counter() - started, 3),
            "error": error.reason,
        }
    print(f"{'case':<20} {'p50 µs':>10} {'p99 µs':>10}")
    for name, figures in results.items():
        if "p50_us" in figures:
            print(f"{name:<20} {figures['p50_us']:>10} {figures['p99_us']:>10}")
    print(f"runaway: {results.get('runaway')}")
    output = ROOT / "tests" / "bench" / "results" / "expressions.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({"iterations": iterations, "results": results}, indent=2))


if __name__ == "__main__":
    main()
