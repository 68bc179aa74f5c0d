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


# A chain of field selections from a name: ``trigger.body.amount``, ``steps . score``.
FIELD_CHAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\s*\.\s*[A-Za-z_][A-Za-z0-9_]*)*")
CALLED = re.compile(r"\s*\(")
# In a trie of the paths a source reads: read whole from here on.
WHOLE: dict[str, Any] = {}


@lru_cache(maxsize=4096)
def _reads(source: str) -> tuple[frozenset[str], dict[str, Any]]:
    """The names a compiled ``source`` reads (variables and helpers), and, for each, the
    trie of the field paths it selects there (``WHOLE`` where it may read more)."""
    program = compile_expression(source)
    names = frozenset(program.variables()) | frozenset(program.functions())
    paths: dict[str, Any] = {}
    for chain in FIELD_CHAIN.finditer(source):
        segments = [segment.strip() for segment in chain.group().split(".")]
        if CALLED.match(source, chain.end()):
            segments.pop()  # a method (``x.size()``) or a function: its receiver is read whole
        if segments and segments[0] in names:
            _add_path(paths, segments)
    return names, paths


def _add_path(trie: dict[str, Any], segments: list[str]) -> None:
    """Add a path; its last segment is read whole (what a selection ends on is used as it
    is, indexed, or given to a function), and so is anything under it."""
    for depth, segment in enumerate(segments):
        below = trie.get(segment)
        if below is WHOLE:
            return
        if depth == len(segments) - 1:
            trie[segment] = WHOLE
            return
        trie = trie.setdefault(segment, {})


def _selected(value: Any, trie: dict[str, Any]) -> Any:
    """What of ``value`` the paths of ``trie`` select: the rest of each dict left out, as
    if absent (a missing field is an error either way)."""
    if trie is WHOLE or type(value) is not dict:
        return value
    return {key: _selected(value[key], below) for key, below in trie.items() if key in value}


def _context(source: str, scope: dict[str, Any]) -> dict[str, Any]:
    """What ``source`` reads of ``scope`` and the helpers: the CEL library converts every
    value it is given on each call (microseconds each: a step's HTTP answer, with its
    headers, cost more than the expression), so it gets only the fields the expression
    selects."""
    names, paths = _reads(source)
    context: dict[str, Any] = {name: HELPERS[name] for name in names if name in HELPERS}
    for name in names:
        if name in scope:
            context[name] = _selected(scope[name], paths.get(name, WHOLE))
    return context


@lru_cache(maxsize=4096)
def _plain_path(source: str) -> tuple[str, ...] | None:
    """The fields of a source that only selects a field of a variable
    (``steps.prepare.output.amount``), or None."""
    names, _ = _reads(source)
    chain = FIELD_CHAIN.fullmatch(source.strip())
    if chain is None:
        return None
    path = tuple(segment.strip() for segment in chain.group().split("."))
    return path if path[0] in names and path[0] not in HELPERS else None


# What ``_selected_scalar`` returns for a path it leaves to CEL.
_TO_CEL = object()
_INT64 = range(-(2**63), 2**63)


def _selected_scalar(scope: dict[str, Any], path: tuple[str, ...]) -> Any:
    """The value at ``path`` when each step is a dict holding the field and it ends on a
    value CEL gives back as it is (text, a boolean, a number CEL holds, null); else
    ``_TO_CEL``, for CEL to select it (and to word a missing field's error)."""
    value: Any = scope
    for segment in path:
        if type(value) is not dict or segment not in value:
            return _TO_CEL
        value = value[segment]
    kind = type(value)
    if kind in (str, bool, float) or value is None or (kind is int and value in _INT64):
        return value
    return _TO_CEL


def evaluate(source: str, scope: dict[str, Any]) -> Any:
    program = compile_expression(source)
    if needs_bounds(source):
        return _evaluate_bounded(source, scope)
    # A plain field selection is most of a flow's expressions: read in Python, it costs a
    # tenth of handing its data to CEL (microseconds for each dict on the way).
    path = _plain_path(source)
    if path is not None and (value := _selected_scalar(scope, path)) is not _TO_CEL:
        return value
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
