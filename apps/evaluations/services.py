"""Writes for evaluations: a flow's example cases, and starting a comparison of two
versions on them (one dry run per case and version, trigger ``evaluation``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from apps.audit.services import audit_record
from apps.flows.definition import validate_definition
from apps.flows.models import Flow, FlowVersion
from apps.runs.blocks import envelope
from apps.runs.models import Trigger
from apps.runs.services import run_start

from .expectations import expectation_problem
from .models import EvalCase, Evaluation, EvaluationRun, EvaluationSide

MAX_CASES = 200
MAX_CASE_BYTES = 64 * 1024


class EvaluationError(Exception):
    """Bad input for an evaluation (a 400 on a page, a CommandError in the CLI)."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.message, self.field = message, field


@dataclass(frozen=True)
class Target:
    """One side of a comparison: ``reference`` is ``draft`` or ``v<number>``."""

    reference: str
    version: FlowVersion | None
    definition: dict[str, Any]


def evaluation_target(*, flow: Flow, reference: str) -> Target:
    """``draft``, ``published`` (the latest version) or a version number (``3`` or ``v3``).
    Raises EvaluationError for anything else, an unknown version or a draft with problems."""
    wanted = (reference or "").strip().lower()
    if wanted == "draft":
        problems = validate_definition(flow.draft_definition, workspace_id=flow.workspace_id)
        if problems:
            listed = "; ".join(str(problem) for problem in problems[:3])
            raise EvaluationError(f"the draft cannot run until its problems are fixed: {listed}")
        return Target("draft", None, flow.draft_definition)
    if wanted in ("published", "latest"):
        if flow.latest_version is None:
            raise EvaluationError(f"{flow.name} has no published version yet")
        return _version_target(flow.latest_version)
    match = re.fullmatch(r"v?(\d{1,9})", wanted)
    if match is None:
        raise EvaluationError(
            f"{reference!r} is not 'draft', 'published' or a version number such as v3"
        )
    version = flow.versions.filter(number=int(match.group(1))).first()
    if version is None:
        raise EvaluationError(f"{flow.name} has no version {match.group(1)}")
    return _version_target(version)


def _version_target(version: FlowVersion) -> Target:
    return Target(f"v{version.number}", version, version.definition)


def _checked_case(name: str, input: Any, expected: Any) -> str:
    import json

    name = (name or "").strip()
    if not name or len(name) > 200:
        raise EvaluationError("a case needs a name of at most 200 characters", "name")
    if not isinstance(input, dict):
        raise EvaluationError("the input is a JSON object (the run's trigger.body)", "input")
    if not isinstance(expected, dict):
        raise EvaluationError("the expected result is a JSON object of fields", "expected")
    if problem := expectation_problem(expected):
        raise EvaluationError(problem, "expected")
    if len(json.dumps(input)) + len(json.dumps(expected)) > MAX_CASE_BYTES:
        raise EvaluationError(f"a case holds at most {MAX_CASE_BYTES // 1024} KiB of JSON", "input")
    return name


def eval_case_save(
    *,
    flow: Flow,
    actor: Any,
    name: str,
    input: Any,
    expected: Any,
    case: EvalCase | None = None,
) -> EvalCase:
    """Add a case to ``flow`` (or change ``case``). Raises EvaluationError: no name, input
    or expectation that is not a JSON object, a name another case of the flow has, too
    many cases."""
    name = _checked_case(name, input, expected)
    if case is None and flow.eval_cases.count() >= MAX_CASES:
        raise EvaluationError(f"a flow has at most {MAX_CASES} cases")
    case = case or EvalCase(workspace_id=flow.workspace_id, flow=flow, created_by=actor)
    case.name, case.input, case.expected = name, input, expected
    try:
        with transaction.atomic():
            case.save()
            audit_record(
                workspace_id=flow.workspace_id,
                action="flow.eval_case_saved",
                actor=actor,
                object_type="flow",
                object_id=flow.pk,
                summary=f"{flow.name}: evaluation case {name!r} saved",
                data={"case": name},
            )
    except IntegrityError:
        raise EvaluationError(f"{flow.name} already has a case called {name!r}", "name") from None
    return case


def eval_case_delete(*, case: EvalCase, actor: Any) -> None:
    with transaction.atomic():
        audit_record(
            workspace_id=case.workspace_id,
            action="flow.eval_case_deleted",
            actor=actor,
            object_type="flow",
            object_id=case.flow_id,
            summary=f"evaluation case {case.name!r} deleted",
            data={"case": case.name},
        )
        case.delete()


def evaluation_start(*, flow: Flow, actor: Any, baseline: str, candidate: str) -> Evaluation:
    """Run every case of ``flow`` on ``baseline`` and on ``candidate`` (see
    ``evaluation_target``): dry runs (side-effecting blocks describe what they would do),
    trigger ``evaluation`` (not counted on the dashboard), queued for the workers after
    commit. Raises EvaluationError: no cases, the same version twice, a bad reference."""
    cases = list(flow.eval_cases.order_by("name"))
    if not cases:
        raise EvaluationError(f"{flow.name} has no evaluation cases yet: add some first")
    sides = {
        EvaluationSide.BASELINE: evaluation_target(flow=flow, reference=baseline),
        EvaluationSide.CANDIDATE: evaluation_target(flow=flow, reference=candidate),
    }
    if sides[EvaluationSide.BASELINE].reference == sides[EvaluationSide.CANDIDATE].reference:
        raise EvaluationError("pick two different versions to compare", "candidate")
    with transaction.atomic():
        evaluation = Evaluation.objects.create(
            workspace_id=flow.workspace_id,
            flow=flow,
            baseline=sides[EvaluationSide.BASELINE].reference,
            candidate=sides[EvaluationSide.CANDIDATE].reference,
            requested_by=actor,
        )
        rows = [
            EvaluationRun(
                evaluation=evaluation,
                side=side,
                case=case,
                case_name=case.name,
                expected=case.expected,
                run=_start_case(flow, target, case, actor),
            )
            for side, target in sides.items()
            for case in cases
        ]
        EvaluationRun.objects.bulk_create(rows)
        audit_record(
            workspace_id=flow.workspace_id,
            action="flow.evaluation_started",
            actor=actor,
            object_type="flow",
            object_id=flow.pk,
            summary=f"{flow.name}: {evaluation} on {len(cases)} cases",
            data={
                "evaluation": str(evaluation.pk),
                "baseline": evaluation.baseline,
                "candidate": evaluation.candidate,
                "cases": len(cases),
            },
        )
    return evaluation


def _start_case(flow: Flow, target: Target, case: EvalCase, actor: Any) -> Any:
    return run_start(
        flow=flow,
        trigger=Trigger.EVALUATION,
        payload=envelope(case.input),
        actor=actor,
        version=target.version,
        draft_definition=target.definition if target.version is None else None,
        dry_run=True,
    ).run
