"""Safe expressions: CEL (Common Expression Language), never Python ``eval``.

Config fields typed ``Expression`` hold CEL source; ``Template`` fields hold text with
``{{ expression }}`` placeholders. Both are marked in the block's JSON Schema (``format:
cel`` / ``format: cel-template``), which is how the flow validator and the canvas find them.
Expressions are bounded in size; compiled programs are cached. Expressions with
comprehension macros run under a time and memory budget in a child process
(``expression_sandbox``); the rest cost at most linear time in their size and data.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated, Any

import cel
from pydantic import Field

from .expression_helpers import HELPERS, MISSING_FIELD_HINT, helper_failure
from .expression_sandbox import BudgetExceeded, evaluate_bounded, needs_bounds, shared_budget

MAX_EXPRESSION_LENGTH = 4_000
TEMPLATE_PLACEHOLDER = re.compile(r"\{\{(.+?)\}\}", re.DOTALL)

Expression = Annotated[
    str,
    Field(max_length=MAX_EXPRESSION_LENGTH, json_schema_extra={"format": "cel"}),
]
Template = Annotated[
    str,
    Field(max_length=20_000, json_schema_extra={"format": "cel-template"}),
]


class ExpressionError(Exception):
    """An expression failed to compile or evaluate. ``str()`` names the expression."""

    def __init__(self, expression: str, reason: str):
        super().__init__(f"expression {expression!r}: {reason}")
        self.expression = expression
        self.reason = reason


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else "invalid expression"


@lru_cache(maxsize=4096)
def compile_expression(source: str) -> cel.Program:
    if len(source) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(source[:60] + "…", f"longer than {MAX_EXPRESSION_LENGTH} characters")
    if not source.strip():
        raise ExpressionError(source, "is empty")
    try:
        return cel.compile(source)
    except (ValueError, RuntimeError) as error:
        raise ExpressionError(source, _clean(str(error))) from None


def _clean(message: str) -> str:
    # The CEL library prefixes its own wording; keep the part a builder can act on.
    if helper := helper_failure(message):
        return helper
    if syntax := SYNTAX_ERROR.search(message):
        return f"cannot parse: {_syntax_problem(syntax)}"
    message = message.replace("Failed to parse expression", "cannot parse")
    return _first_line(message)


# The parser's report: "ERROR: <input>:1:22: Syntax error: mismatched input '<EOF>'
# expecting {'[', '{', '(', ...}" followed by the line and a caret.
SYNTAX_ERROR = re.compile(r"<input>:\d+:(?P<column>\d+): Syntax error: (?P<detail>[^\n]*)")
_UNEXPECTED = re.compile(r"(?:mismatched|extraneous) input '(?P<token>.*)' expecting")
_UNREADABLE = re.compile(r"token recognition error at: '(?P<text>.*)'$")
_NO_ALTERNATIVE = re.compile(r"no viable alternative at input '(?P<text>.*)'$")


def _syntax_problem(syntax: re.Match[str]) -> str:
    """The parser's report in a builder's words: where, and what is wrong there."""
    detail, where = syntax.group("detail").strip(), f"at character {syntax.group('column')}"
    if unexpected := _UNEXPECTED.match(detail):
        found = unexpected.group("token")
        if found == "<EOF>":
            return f"it ends too soon {where}: something is missing at the end"
        return f"unexpected {found!r} {where}"
    if unreadable := _UNREADABLE.match(detail):
        text = unreadable.group("text")
        if text[:1] in "'\"":
            return f"a string is not closed {where}: {text}"
        return f"cannot read {text!r} {where}"
    if no_alternative := _NO_ALTERNATIVE.match(detail):
        return f"unexpected {no_alternative.group('text')[-1:]!r} {where}"
    return f"{detail.split(' expecting ')[0]} {where}"


# ``steps.<id>`` in a source; a source that names ``steps`` only so reads only those steps.
STEP_REFERENCE = re.compile(r"\bsteps\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)")
STEPS_NAMED = re.compile(r"\bsteps\b")


@lru_cache(maxsize=4096)
def _reads(source: str) -> tuple[frozenset[str], frozenset[str] | None]:
    """The names a compiled ``source`` reads (variables and helpers), and the steps it
    reads when it names each by ``steps.<id>`` (None: it may read any step)."""
    program = compile_expression(source)
    names = frozenset(program.variables()) | frozenset(program.functions())
    steps = STEP_REFERENCE.findall(source)
    named = len(STEPS_NAMED.findall(source))
    return names, (frozenset(steps) if len(steps) == named else None)


def _context(source: str, scope: dict[str, Any]) -> dict[str, Any]:
    """What ``source`` reads of ``scope`` and the helpers: the CEL library converts every
    value it is given on each call (microseconds each), so it gets no more."""
    names, steps = _reads(source)
    context: dict[str, Any] = {name: HELPERS[name] for name in names if name in HELPERS}
    for name in names:
        if name in scope:
            context[name] = scope[name]
    if steps is not None and isinstance(context.get("steps"), dict):
        every = context["steps"]
        context["steps"] = {node: every[node] for node in steps if node in every}
    return context


def evaluate(source: str, scope: dict[str, Any]) -> Any:
    program = compile_expression(source)
    if needs_bounds(source):
        return _evaluate_bounded(source, scope)
    try:
        return program.execute(_context(source, scope))
    except KeyError as error:
        missing = f"no field {error.args[0]!r}: {MISSING_FIELD_HINT}"
        raise ExpressionError(source, missing) from None
    except Exception as error:  # the CEL runtime raises several types; all mean "failed"
        raise ExpressionError(source, _clean(str(error)) or type(error).__name__) from None


def _evaluate_bounded(source: str, scope: dict[str, Any]) -> Any:
    try:
        kind, detail = evaluate_bounded(source, scope)
    except BudgetExceeded as error:
        raise ExpressionError(source, str(error)) from None
    except (TypeError, ValueError) as error:
        raise ExpressionError(source, f"its data cannot be evaluated: {error}") from None
    if kind == "missing":
        raise ExpressionError(source, f"no field {detail!r}: {MISSING_FIELD_HINT}")
    if kind == "error":
        raise ExpressionError(source, _clean(detail))
    return detail


def template_expressions(template: str) -> list[str]:
    return [match.strip() for match in TEMPLATE_PLACEHOLDER.findall(template)]


def render(template: str, scope: dict[str, Any]) -> str:
    """Substitute each placeholder; all of them share one time budget."""

    def substitute(match: re.Match[str]) -> str:
        value = evaluate(match.group(1).strip(), scope)
        return "" if value is None else str(value)

    with shared_budget():
        return TEMPLATE_PLACEHOLDER.sub(substitute, template)


def evaluate_tree(value: Any, scope: dict[str, Any]) -> Any:
    """Evaluate every string leaf of a nested dict/list as CEL, under one time budget."""
    with shared_budget():
        return _evaluate_leaves(value, scope)


def _evaluate_leaves(value: Any, scope: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return evaluate(value, scope)
    if isinstance(value, dict):
        return {key: _evaluate_leaves(item, scope) for key, item in value.items()}
    if isinstance(value, list):
        return [_evaluate_leaves(item, scope) for item in value]
    return value
