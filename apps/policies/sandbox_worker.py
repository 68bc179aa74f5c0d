"""Child process that evaluates a policy for the sandbox (see ``sandbox.py``).

Reads one JSON job on stdin, writes one JSON answer on stdout. It caps its own address
space, and the parent kills it at the deadline, so a policy that loops or builds huge
collections costs at most that much time and memory.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import regorus

from apps.core.process_limits import cap_address_space
from apps.policies.engine import plain, rule_names


def _evaluate_case(
    engine: Any, package: str, case: dict[str, Any], coverage: bool
) -> dict[str, Any]:
    engine.set_input(case["input"])
    if coverage:
        engine.clear_coverage_data()
    started = time.perf_counter()
    try:
        value = plain(engine.eval_rule(f"data.{package}.{case['rule']}"))
    except (RuntimeError, ValueError, TypeError) as error:
        return {"error": str(error), "duration_ms": (time.perf_counter() - started) * 1000}
    outcome: dict[str, Any] = {
        "value": value,
        "duration_ms": (time.perf_counter() - started) * 1000,
    }
    if coverage:
        report = json.loads(engine.get_coverage_report_as_json())
        outcome["covered_lines"] = sorted(
            {line for file in report.get("files", []) for line in file.get("covered", [])}
        )
        outcome["fired"] = _fired_rules(engine, package)
    return outcome


def _fired_rules(engine: Any, package: str) -> dict[str, Any]:
    """Every rule of the policy that has a value for this input (false and empty sets excluded)."""
    fired = {}
    for name in rule_names(engine):
        try:
            value = plain(engine.eval_rule(f"data.{package}.{name}"))
        except (RuntimeError, ValueError, TypeError):
            continue
        if value not in (None, False, [], {}):
            fired[name] = value
    return fired


def main() -> None:
    job = json.load(sys.stdin)
    memory = int(job["max_memory_bytes"])
    # On top of what is mapped now: importing regorus alone maps about 1 GiB, so a cap
    # of 1 GiB in all was spent before evaluating anything and any new allocation failed
    # (the playground's "rules that fired" died serialising the syntax tree).
    cap_address_space(memory)
    engine = regorus.Engine()
    engine.set_policy_length_config(
        max_col=2_000,
        max_file_bytes=int(job["max_source_bytes"]),
        max_lines=int(job["max_source_bytes"]) // 8,
    )
    try:
        engine.add_policy("policy.rego", job["source"])
    except RuntimeError as error:
        json.dump({"compile_error": str(error)}, sys.stdout)
        return
    engine.set_enable_coverage(bool(job.get("coverage")))
    results = [
        _evaluate_case(engine, job["package"], case, bool(job.get("coverage")))
        for case in job["cases"]
    ]
    json.dump({"results": results}, sys.stdout, default=str)


if __name__ == "__main__":
    main()
