"""What an evaluation case expects of a run's result, and how a result is checked against it.

A case's ``expected`` is a JSON object of fields. Plain values match as before: every field
given must be in the result with an equal value (same JSON type; other fields of the result
are ignored; nested objects compare the same way; ``{}`` only asks that the run succeeds).
In place of any value, a **matcher** (an object whose keys all start with ``$``) asks for
something looser or stricter:

- ``{"$exact": value}``: equal, and an object has no other fields (at any depth);
- ``{"$approx": number, "$tolerance": number}``: a number within the tolerance (absolute,
  default 0.000001) of the expected one;
- ``{"$contains": "text"}``: a text that contains it, or a list with an item equal to it
  or a text item that contains it;
- ``{"$regex": "pattern"}``: a text in which the regular expression finds a match
  (evaluated by CEL's ``matches``, a linear-time engine: no pattern can hang a report);
- ``{"$one_of": [values]}``: equal to one of them.

Matchers are checked when a case is saved (``expectation_problem``), so a report never
meets a malformed one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from apps.blocks.expressions import ExpressionError, evaluate

DEFAULT_TOLERANCE = 1e-6
MAX_PATTERN = 500
MATCHERS = ("$exact", "$approx", "$contains", "$regex", "$one_of")


def is_matcher(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(str(k).startswith("$") for k in value)


def expectation_problem(expected: Any, path: str = "") -> str:
    """What is wrong with the matchers in ``expected`` ("" when nothing is)."""
    if is_matcher(expected):
        return _matcher_problem(expected, path.rstrip(".") or "the result")
    if isinstance(expected, dict):
        for key, value in expected.items():
            if problem := expectation_problem(value, f"{path}{key}."):
                return problem
    return ""


def _matcher_problem(matcher: dict[str, Any], where: str) -> str:
    keys = set(matcher)
    kind = next((name for name in MATCHERS if name in keys), None)
    allowed = {kind, "$tolerance"} if kind == "$approx" else {kind}
    if kind is None or keys - allowed:
        return f"{where}: use one of {', '.join(MATCHERS)} (and $tolerance with $approx)"
    value = matcher[kind]
    if kind == "$approx":
        tolerance = matcher.get("$tolerance", DEFAULT_TOLERANCE)
        if not _is_number(value) or not _is_number(tolerance) or tolerance < 0:
            return f"{where}: $approx and $tolerance are numbers, the tolerance not negative"
    elif kind == "$contains" and not isinstance(value, str):
        return f"{where}: $contains takes a text"
    elif kind == "$regex":
        if not isinstance(value, str) or not 0 < len(value) <= MAX_PATTERN:
            return f"{where}: $regex takes a pattern of 1 to {MAX_PATTERN} characters"
        try:
            _matches("", value)
        except ExpressionError as error:
            return f"{where}: $regex is not a valid pattern ({str(error).splitlines()[0]})"
    elif kind == "$one_of" and not (isinstance(value, list) and value):
        return f"{where}: $one_of takes a non-empty list of values"
    return ""


def mismatches(expected: Any, actual: Any, path: str = "") -> list[str]:
    """How ``actual`` differs from ``expected`` (see the module's docstring); empty when it
    matches."""
    where = path.rstrip(".") or "the result"
    kind = (
        next((name for name in MATCHERS if name in expected), None)
        if is_matcher(expected)
        else None
    )
    if kind is not None:
        return _MATCH[kind](expected, actual, where)
    if expected == {}:
        return []
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where} is not an object"]
        found: list[str] = []
        for key, value in expected.items():
            if key not in actual:
                found.append(f"{path}{key} is missing")
            else:
                found += mismatches(value, actual[key], f"{path}{key}.")
        return found
    if _same(expected, actual):
        return []
    return [f"{where} is {_shown(actual)}, expected {json.dumps(expected)}"]


def _exact(matcher: dict[str, Any], actual: Any, where: str) -> list[str]:
    value = matcher["$exact"]
    if _deep_equal(value, actual):
        return []
    return [f"{where} is {_shown(actual)}, expected exactly {_shown(value)}"]


def _approx(matcher: dict[str, Any], actual: Any, where: str) -> list[str]:
    value, tolerance = matcher["$approx"], matcher.get("$tolerance", DEFAULT_TOLERANCE)
    if _is_number(actual) and abs(actual - value) <= tolerance:
        return []
    return [f"{where} is {_shown(actual)}, expected {value} ± {tolerance}"]


def _contains(matcher: dict[str, Any], actual: Any, where: str) -> list[str]:
    text = matcher["$contains"]
    if isinstance(actual, str) and text in actual:
        return []
    if isinstance(actual, list) and any(
        item == text or (isinstance(item, str) and text in item) for item in actual
    ):
        return []
    return [f"{where} is {_shown(actual)}, expected it to contain {json.dumps(text)}"]


def _regex(matcher: dict[str, Any], actual: Any, where: str) -> list[str]:
    pattern = matcher["$regex"]
    if isinstance(actual, str) and _matches(actual, pattern):
        return []
    return [f"{where} is {_shown(actual)}, expected a match of /{pattern}/"]


def _one_of(matcher: dict[str, Any], actual: Any, where: str) -> list[str]:
    if any(_same(value, actual) for value in matcher["$one_of"]):
        return []
    return [f"{where} is {_shown(actual)}, expected one of {_shown(matcher['$one_of'])}"]


_MATCH: dict[str, Callable[[dict[str, Any], Any, str], list[str]]] = {
    "$exact": _exact,
    "$approx": _approx,
    "$contains": _contains,
    "$regex": _regex,
    "$one_of": _one_of,
}


def _matches(text: str, pattern: str) -> bool:
    return bool(evaluate("text.matches(pattern)", {"text": text, "pattern": pattern}))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(expected: Any, actual: Any) -> bool:
    """Equal and of the same JSON type (``true`` is not ``1``)."""
    return isinstance(expected, bool) == isinstance(actual, bool) and expected == actual


def _deep_equal(expected: Any, actual: Any) -> bool:
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and expected.keys() == actual.keys()
            and all(_deep_equal(value, actual[key]) for key, value in expected.items())
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(_deep_equal(a, b) for a, b in zip(expected, actual, strict=True))
        )
    return _same(expected, actual)


def _shown(value: Any) -> str:
    shown = json.dumps(value, default=str)
    return shown if len(shown) <= 80 else shown[:77] + "..."
