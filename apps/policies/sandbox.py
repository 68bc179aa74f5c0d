"""Bounded evaluation of policies that are still being written.

Drafts, test runs and the playground evaluate code nobody has vetted yet; regorus cannot be
interrupted in-process, so these evaluations run in a child process (``sandbox_worker``)
with a memory cap that is killed at its deadline. Publishing requires the tests to pass
here, which is what keeps a looping policy from ever reaching the in-process fast path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from .engine import PolicyError, PolicySource, limits, parse_regorus_error

STARTUP_ALLOWANCE_SECONDS = 3.0
# Address space the evaluation may add to what the worker holds once started (the
# interpreter, and the arena of about 1 GiB that regorus reserves on import and fills first).
MAX_MEMORY_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class CaseOutcome:
    """One evaluation in the sandbox: the rule's value or the error, and, when coverage was
    asked for, the covered lines and the rules that had a value (``fired``)."""

    value: Any = None
    error: str = ""
    duration_ms: float = 0.0
    covered_lines: list[int] = field(default_factory=list)
    fired: dict[str, Any] = field(default_factory=dict)


def run_cases(
    *, policy: PolicySource, cases: list[tuple[str, dict[str, Any]]], coverage: bool = False
) -> list[CaseOutcome]:
    """Evaluate each (rule, input) of ``cases``. Raises PolicyError when the policy does not
    load or the whole run exceeds its time or memory bound."""
    bounds = limits()
    job = {
        "source": policy.source,
        "package": policy.package,
        "cases": [{"rule": rule, "input": input} for rule, input in cases],
        "coverage": coverage,
        "max_source_bytes": bounds["max_source_bytes"],
        "max_memory_bytes": MAX_MEMORY_BYTES,
    }
    budget = bounds["timeout_ms"] / 1000 * max(1, len(cases))
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "apps.policies.sandbox_worker"],
            input=json.dumps(job, default=str),
            capture_output=True,
            text=True,
            timeout=budget + STARTUP_ALLOWANCE_SECONDS,
            cwd=settings.BASE_DIR,
            env={"PATH": os.environ.get("PATH", ""), "RUST_BACKTRACE": "0"},
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise PolicyError(
            f"evaluation did not finish within {budget:.1f} s: the policy loops or builds "
            "very large collections"
        ) from None
    if completed.returncode != 0:
        reason = (
            "ran out of memory"
            if "MemoryError" in completed.stderr or "memory" in completed.stderr
            else "crashed"
        )
        raise PolicyError(f"evaluation {reason} (exit status {completed.returncode})")
    answer = json.loads(completed.stdout)
    if "compile_error" in answer:
        raise PolicyError(str(parse_regorus_error(answer["compile_error"])))
    return [
        CaseOutcome(
            value=result.get("value"),
            error=parse_regorus_error(result["error"]).message if result.get("error") else "",
            duration_ms=float(result.get("duration_ms", 0.0)),
            covered_lines=result.get("covered_lines", []),
            fired=result.get("fired", {}),
        )
        for result in answer["results"]
    ]
