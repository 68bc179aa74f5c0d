"""The run lifecycle (apps/runs/lifecycle.py): the only code that changes a run's or a
step's status, and it refuses transitions its moves do not allow.

The rule part reads the source (AST): outside the lifecycle module no code assigns
``.status`` on a run or step, passes ``status=`` to an ORM write of one, or writes a status
literal (or a status condition of its own) in SQL.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from apps.runs import lifecycle
from apps.runs.engine import advance, claims
from apps.runs.lifecycle import IllegalTransition
from apps.runs.models import Run, RunStatus, StepRun, StepStatus
from apps.runs.services import RunError, run_cancel, run_retry_from_failed, run_start
from tests.runs.helpers import chain, published_flow

ROOT = Path(__file__).resolve().parents[2]
LIFECYCLE = ROOT / "apps" / "runs" / "lifecycle.py"
STATUSES = sorted(set(RunStatus.values) | set(StepStatus.values))
ORM_WRITES = {"update", "create", "get_or_create", "update_or_create", "Run", "StepRun"}
SQL = re.compile(r"\b(SELECT|UPDATE|INSERT INTO|DELETE FROM)\b")
STATUS_LITERAL = re.compile(r"'(" + "|".join(STATUSES) + r")'")
# A status compared or assigned in SQL by anything but a fragment of the lifecycle module.
STATUS_CONDITION = re.compile(
    r"\bstatus\s*(?:=|<>|!=|\bIN\b|\bNOT\s+IN\b)(?!\s*\{lifecycle\})", re.IGNORECASE
)


def _sources() -> list[Path]:
    paths = []
    for top in ("apps", "studio", "workers"):
        paths += [
            path
            for path in sorted((ROOT / top).rglob("*.py"))
            if "migrations" not in path.parts and path != LIFECYCLE
        ]
    return paths


def _in_runs_app(path: Path) -> bool:
    return (ROOT / "apps" / "runs") in path.parents or path.parts[:2] == ("apps", "runs")


def _about_runs(expression: ast.expr) -> bool:
    """Outside the runs app other models have a status too (tasks, flows, promotions):
    there only what names a run or a step counts (``run.status``, ``Run.objects...``)."""
    text = ast.unparse(expression).lower()
    return "run" in text or "step" in text


def _root_name(expression: ast.expr) -> str | None:
    while isinstance(expression, (ast.Attribute, ast.Call, ast.Subscript)):
        expression = expression.func if isinstance(expression, ast.Call) else expression.value
    return expression.id if isinstance(expression, ast.Name) else None


def _sql_text(node: ast.expr) -> str | None:
    """The text of a string or f-string, each interpolation as ``{lifecycle}`` (a
    fragment of the lifecycle module) or ``{?}``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            elif isinstance(value, ast.FormattedValue):
                rooted = _root_name(value.value) == "lifecycle"
                parts.append("{lifecycle}" if rooted else "{?}")
        return "".join(parts)
    return None


def _status_targets(node: ast.AST, runs_app: bool) -> list[ast.Attribute]:
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
        targets = [node.target]
    found = []
    while targets:
        target = targets.pop()
        if isinstance(target, (ast.Tuple, ast.List)):
            targets += target.elts
        elif isinstance(target, ast.Attribute) and target.attr == "status":
            # ``self.status`` is an object's own field (an error's HTTP status), not a run's.
            if isinstance(target.value, ast.Name) and target.value.id == "self":
                continue
            if runs_app or _about_runs(target.value):
                found.append(target)
    return found


def _orm_status_write(node: ast.AST, runs_app: bool) -> bool:
    if not isinstance(node, ast.Call) or not (runs_app or _about_runs(node.func)):
        return False
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    for keyword in node.keywords:
        if keyword.arg == "status" and name in ORM_WRITES:
            return True
        fields = keyword.value
        if keyword.arg == "update_fields" and isinstance(fields, (ast.List, ast.Tuple)):
            return any(getattr(item, "value", None) == "status" for item in fields.elts)
    if name == "setattr" and len(node.args) > 1:
        return getattr(node.args[1], "value", None) == "status"
    return False


def violations(path: Path, source: str) -> list[str]:
    tree = ast.parse(source)
    where = path.relative_to(ROOT) if path.is_absolute() else path
    found = []
    runs_app = _in_runs_app(where)
    # An f-string is read whole, not part by part.
    parts = {
        id(part)
        for node in ast.walk(tree)
        if isinstance(node, ast.JoinedStr)
        for part in node.values
    }
    for node in ast.walk(tree):
        line = f"{where}:{getattr(node, 'lineno', '?')}"
        found += [f"{line}: assigns .status" for _ in _status_targets(node, runs_app)]
        if _orm_status_write(node, runs_app):
            found.append(f"{line}: writes status through the ORM")
        text = _sql_text(node) if isinstance(node, ast.expr) and id(node) not in parts else None
        if text and SQL.search(text):
            if STATUS_LITERAL.search(text):
                found.append(f"{line}: a status literal in SQL")
            if STATUS_CONDITION.search(text):
                found.append(f"{line}: a status condition in SQL not built by the lifecycle")
    return found


def test_only_the_lifecycle_module_changes_statuses():
    found = []
    for path in _sources():
        found += violations(path, path.read_text())
    assert not found, "status changes outside apps/runs/lifecycle.py:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "snippet",
    [
        "run.status = RunStatus.RUNNING",
        "step.status, step.port = 'failed', ''",
        "Run.objects.filter(pk=1).update(status='queued')",
        "StepRun.objects.create(run=run, status=StepStatus.SKIPPED)",
        "run.save(update_fields=['status'])",
        "SQL = \"UPDATE runs_run SET status = 'running' WHERE id = %s\"",
        "SQL = f\"UPDATE {T} SET lease_owner = '' WHERE status IN ({S})\"",
    ],
)
def test_the_rule_finds_a_status_written_elsewhere(snippet):
    source = f"from apps.runs.models import Run, RunStatus, StepRun, StepStatus\n{snippet}\n"
    assert violations(Path("apps/runs/example.py"), source)
    assert violations(Path("apps/inbox/example.py"), source)


def test_the_rule_leaves_reads_and_lifecycle_fragments_alone():
    source = (
        "from apps.runs.models import Run, RunStatus\n"
        "from apps.runs import lifecycle\n"
        "running = Run.objects.filter(status=RunStatus.RUNNING)\n"
        "self.status = 404\n"
        "SQL = f'UPDATE t SET status = {lifecycle.CLAIM.target_sql()} "
        "WHERE {lifecycle.CLAIM.guard_sql()}'\n"
    )
    assert violations(Path("apps/runs/example.py"), source) == []
    # Another app's model with a status of its own.
    assert violations(Path("apps/inbox/example.py"), "task.status = 'decided'\n") == []


# --- the tables ----------------------------------------------------------------------------
def test_finished_runs_stay_finished_and_a_failed_one_is_only_retried():
    assert lifecycle.RUN_TRANSITIONS[RunStatus.SUCCEEDED] == frozenset()
    assert lifecycle.RUN_TRANSITIONS[RunStatus.CANCELLED] == frozenset()
    assert lifecycle.RUN_TRANSITIONS[RunStatus.FAILED] == {RunStatus.QUEUED}
    assert RunStatus.RUNNING not in lifecycle.RUN_TRANSITIONS[RunStatus.SUCCEEDED]


def test_every_move_names_real_statuses():
    for move in lifecycle.RUN_MOVES:
        assert set(move.sources) | set(move.targets) <= set(RunStatus.values), move
    for move in lifecycle.STEP_MOVES:
        assert set(move.sources) | set(move.targets) <= {"", *StepStatus.values}, move
    # Completed steps never change again.
    for status in (StepStatus.SUCCEEDED, StepStatus.SKIPPED, StepStatus.IN_DOUBT):
        assert lifecycle.STEP_TRANSITIONS[status] == frozenset()


def test_the_sql_fragments_are_built_from_the_moves():
    assert lifecycle.CLAIM.guard_sql() == "status IN ('queued', 'running')"
    assert lifecycle.CLAIM_QUEUED.guard_sql() == "status = 'queued'"
    assert lifecycle.CLAIM.target_sql() == "'running'"
    assert "status IN ('queued', 'running')" in claims.CLAIM_SQL


# --- refusals --------------------------------------------------------------------------------
def test_an_illegal_run_transition_is_refused_with_a_clear_error():
    run = Run(status=RunStatus.SUCCEEDED)
    with pytest.raises(IllegalTransition) as refused:
        lifecycle.cancel(run, error={"message": "too late"})
    assert str(refused.value) == (
        "illegal run transition: a succeeded run cannot become cancelled (cancel)"
    )
    assert run.status == RunStatus.SUCCEEDED


def test_a_finish_to_a_status_that_is_no_end_is_refused():
    run = Run(status=RunStatus.RUNNING)
    with pytest.raises(IllegalTransition, match="a running run cannot become queued"):
        lifecycle.finish([lifecycle.Finish(run=run, owner="w", status=RunStatus.QUEUED)])


def test_an_illegal_step_transition_is_refused():
    step = StepRun(status=StepStatus.SUCCEEDED)
    with pytest.raises(IllegalTransition) as refused:
        lifecycle.step_to(step, lifecycle.STEP_START, StepStatus.RUNNING)
    assert str(refused.value) == (
        "illegal step transition: a succeeded step cannot become running (start)"
    )
    with pytest.raises(IllegalTransition, match="a new step cannot become resuming"):
        lifecycle.step_to(StepRun(), lifecycle.STEP_RESUME, StepStatus.RESUMING)


@pytest.mark.django_db(transaction=True)
def test_a_succeeded_run_is_neither_claimed_parked_cancelled_nor_retried(workspace, builder_user):
    flow = published_flow(workspace, builder_user, chain(1))
    run = run_start(flow=flow, trigger="manual", payload={"body": {"n": 1}}, enqueue=False).run
    advance(run.id)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED

    assert claims.claim(run.id, "another-worker") is None
    assert lifecycle.park(run, RunStatus.RUNNING, wake_at=None) is None
    with pytest.raises(RunError, match="already succeeded"):
        run_cancel(run=run, actor=builder_user)
    with pytest.raises(RunError, match="only failed runs"):
        run_retry_from_failed(run=run, actor=builder_user)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert run.lease_owner == ""
