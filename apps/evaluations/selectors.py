"""Reads for evaluations: a flow's cases and evaluations, and an evaluation's report
(pass rate, cost and latency per side, a verdict per case), computed from its runs."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, FloatField, Sum
from django.db.models.fields.json import KT, KeyTextTransform
from django.db.models.functions import Cast, Coalesce
from django.http import Http404

from apps.flows.models import Flow
from apps.runs.models import TERMINAL_RUN_STATUSES, RunStatus, StepRun, StepStatus
from apps.runs.selectors import run_result

from .expectations import mismatches
from .models import EvalCase, Evaluation, EvaluationRun, EvaluationSide


def eval_case_list(*, flow: Flow) -> list[EvalCase]:
    return list(flow.eval_cases.order_by("name"))


def eval_case_get(*, flow: Flow, case_id: Any) -> EvalCase:
    case = flow.eval_cases.filter(pk=case_id).first()
    if case is None:
        raise Http404("No such case.")
    return case


def evaluation_list(*, flow: Flow, limit: int = 10) -> list[Evaluation]:
    return list(flow.evaluations.select_related("requested_by").order_by("-created_at")[:limit])


def evaluation_get(*, flow: Flow, evaluation_id: Any) -> Evaluation:
    evaluation = flow.evaluations.filter(pk=evaluation_id).first()
    if evaluation is None:
        raise Http404("No such evaluation.")
    return evaluation


@dataclass
class Verdict:
    run_id: Any
    status: str
    passed: bool | None  # None: not settled yet
    reasons: list[str] = field(default_factory=list)
    latency_ms: float | None = None
    cost: float = 0.0
    tokens: float = 0.0


@dataclass
class SideFigures:
    side: str
    reference: str
    cases: int = 0
    passed: int = 0
    failed: int = 0
    pending: int = 0
    cost: float = 0.0
    tokens: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @property
    def pass_rate(self) -> float | None:
        settled = self.passed + self.failed
        return self.passed / settled if settled else None

    @property
    def latency_p50_ms(self) -> float | None:
        return statistics.median(self.latencies) if self.latencies else None

    @property
    def latency_max_ms(self) -> float | None:
        return max(self.latencies) if self.latencies else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "cases": self.cases,
            "passed": self.passed,
            "failed": self.failed,
            "pending": self.pending,
            "pass_rate": self.pass_rate,
            "cost": self.cost,
            "tokens": self.tokens,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_max_ms": self.latency_max_ms,
        }


@dataclass
class CaseRow:
    name: str
    expected: Any
    baseline: Verdict | None = None
    candidate: Verdict | None = None

    @property
    def verdicts(self) -> list[Verdict | None]:
        return [self.baseline, self.candidate]


@dataclass
class Report:
    evaluation: Evaluation
    baseline: SideFigures
    candidate: SideFigures
    rows: list[CaseRow]

    @property
    def sides(self) -> list[SideFigures]:
        return [self.baseline, self.candidate]

    @property
    def finished(self) -> bool:
        return self.baseline.pending == 0 and self.candidate.pending == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "evaluation": str(self.evaluation.pk),
            "finished": self.finished,
            "baseline": self.baseline.as_dict(),
            "candidate": self.candidate.as_dict(),
            "cases": [
                {
                    "name": row.name,
                    **{
                        side: {
                            "run": str(verdict.run_id) if verdict.run_id else None,
                            "status": verdict.status,
                            "passed": verdict.passed,
                            "reasons": verdict.reasons,
                        }
                        for side, verdict in (
                            ("baseline", row.baseline),
                            ("candidate", row.candidate),
                        )
                        if verdict is not None
                    },
                }
                for row in self.rows
            ],
        }


def _step_figures(run_ids: list[Any]) -> dict[Any, tuple[float, float, float | None]]:
    """(cost, tokens, step time in ms) per run, summed over its succeeded steps, in one
    query. Step time, not the run's start-to-end time: the workers claim queued runs in
    batches, so an evaluation's runs share their start and end."""
    rows = (
        StepRun.objects.filter(run_id__in=run_ids, status=StepStatus.SUCCEEDED)
        .values("run_id")
        .annotate(
            steps=Count("id"),
            cost=Coalesce(Sum(Cast(KeyTextTransform("cost", "meta"), FloatField())), 0.0),
            tokens=Coalesce(Sum(Cast(KT("meta__usage__total"), FloatField())), 0.0),
            step_ms=Sum("duration_ms"),
        )
        .order_by()
    )
    return {row["run_id"]: (row["cost"], row["tokens"], row["step_ms"]) for row in rows}


def _verdict(item: EvaluationRun, figures: dict[Any, tuple[float, float, float | None]]) -> Verdict:
    run = item.run
    if run is None:
        return Verdict(None, "deleted", False, ["the run was deleted (retention)"])
    cost, tokens, step_ms = figures.get(run.pk, (0.0, 0.0, None))
    latency = step_ms if run.status in TERMINAL_RUN_STATUSES else None
    verdict = Verdict(run.pk, run.status, None, [], latency, cost, tokens)
    if run.status == RunStatus.SUCCEEDED:
        verdict.reasons = mismatches(item.expected, run_result(run))
        verdict.passed = not verdict.reasons
    elif run.status in TERMINAL_RUN_STATUSES:
        message = (run.error or {}).get("message") if isinstance(run.error, dict) else None
        verdict.passed, verdict.reasons = False, [f"the run {run.status}: {message or 'no result'}"]
    elif run.status == RunStatus.WAITING:
        verdict.passed, verdict.reasons = False, ["the run waits (for a person or a delay)"]
    return verdict


def evaluation_report(*, evaluation: Evaluation) -> Report:
    """The evaluation's figures as its runs stand now (three queries)."""
    items = list(evaluation.items.select_related("run").order_by("case_name", "side"))
    figures = _step_figures([item.run_id for item in items if item.run_id])
    sides = {
        EvaluationSide.BASELINE: SideFigures("baseline", evaluation.baseline),
        EvaluationSide.CANDIDATE: SideFigures("candidate", evaluation.candidate),
    }
    rows: dict[str, CaseRow] = {}
    for item in items:
        verdict = _verdict(item, figures)
        side = sides[EvaluationSide(item.side)]
        side.cases += 1
        if verdict.passed is None:
            side.pending += 1
        elif verdict.passed:
            side.passed += 1
        else:
            side.failed += 1
        side.cost += verdict.cost
        side.tokens += verdict.tokens
        if verdict.latency_ms is not None:
            side.latencies.append(verdict.latency_ms)
        row = rows.setdefault(item.case_name, CaseRow(item.case_name, item.expected))
        setattr(row, item.side, verdict)
    return Report(
        evaluation,
        sides[EvaluationSide.BASELINE],
        sides[EvaluationSide.CANDIDATE],
        list(rows.values()),
    )
