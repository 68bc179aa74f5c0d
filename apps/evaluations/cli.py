"""``manage.py flows eval SLUG [--version A] [--compare B] [--cases FILE]``: compare two
versions of a flow on its cases from a script or CI, and print the figures."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError

from apps.flows.models import Flow

from . import selectors, services
from .selectors import Report, SideFigures


def add_arguments(parser: Any) -> None:
    parser.add_argument("slug")
    parser.add_argument(
        "--version", default="published", help="the baseline: published (default), draft or vN"
    )
    parser.add_argument(
        "--compare", default="draft", help="the candidate: draft (default), published or vN"
    )
    parser.add_argument(
        "--cases",
        default="",
        help="a JSON file of cases to add or replace first: [{name, input, expected}, ...]",
    )
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for the runs")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def evaluate(flow: Flow, actor: Any, options: dict[str, Any], write: Any) -> int:
    """Run the evaluation, wait for it and print it. The exit status is 1 when the candidate
    passes fewer cases than the baseline (a regression), else 0."""
    if options["cases"]:
        _load_cases(flow, actor, Path(options["cases"]))
    try:
        evaluation = services.evaluation_start(
            flow=flow, actor=actor, baseline=options["version"], candidate=options["compare"]
        )
    except services.EvaluationError as error:
        raise CommandError(error.message) from None
    deadline = time.monotonic() + options["timeout"]
    report = selectors.evaluation_report(evaluation=evaluation)
    while not report.finished and time.monotonic() < deadline:
        time.sleep(0.25)
        report = selectors.evaluation_report(evaluation=evaluation)
    if not report.finished:
        raise CommandError(
            f"evaluation {evaluation.pk} did not finish within {options['timeout']:g} s"
        )
    write(json.dumps(report.as_dict(), indent=2) if options["json"] else _table(report))
    return 1 if report.candidate.passed < report.baseline.passed else 0


def _load_cases(flow: Flow, actor: Any, path: Path) -> None:
    try:
        cases = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise CommandError(f"cannot read {path}: {error}") from None
    if not isinstance(cases, list) or not all(isinstance(case, dict) for case in cases):
        raise CommandError(f"{path} must hold a JSON list of {{name, input, expected}} objects")
    existing = {case.name: case for case in selectors.eval_case_list(flow=flow)}
    for raw in cases:
        try:
            services.eval_case_save(
                flow=flow,
                actor=actor,
                name=str(raw.get("name", "")),
                input=raw.get("input", {}),
                expected=raw.get("expected", {}),
                case=existing.get(str(raw.get("name", "")).strip()),
            )
        except services.EvaluationError as error:
            raise CommandError(f"case {raw.get('name')!r}: {error.message}") from None


def _side(figures: SideFigures) -> list[str]:
    rate = "—" if figures.pass_rate is None else f"{figures.pass_rate:.0%}"
    p50 = figures.latency_p50_ms
    return [
        f"{figures.side} {figures.reference}",
        f"{figures.passed}/{figures.cases} ({rate})",
        f"{figures.cost:.6f}",
        f"{figures.tokens:.0f}",
        "—" if p50 is None else f"{p50:.1f} ms",
    ]


def _table(report: Report) -> str:
    labels = ["", "passed", "cost", "tokens", "step time p50"]
    columns = [labels, _side(report.baseline), _side(report.candidate)]
    widths = [max(len(cell) for cell in column) for column in columns]
    lines = [
        "  ".join(column[row].ljust(width) for column, width in zip(columns, widths, strict=True))
        for row in range(len(labels))
    ]
    for row in report.rows:
        for verdict, figures in (
            (row.baseline, report.baseline),
            (row.candidate, report.candidate),
        ):
            if verdict is not None and not verdict.passed:
                lines.append(
                    f"FAIL {row.name} on {figures.reference}: {'; '.join(verdict.reasons)}"
                )
    return "\n".join(line.rstrip() for line in lines)
