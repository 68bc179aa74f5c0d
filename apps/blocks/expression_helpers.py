"""Functions every expression may call, beside CEL's own (``has()``, ``size()``, ``map``,
``filter``, ``exists``...). Registered with the CEL environment by ``expressions.evaluate``.

A field that may be missing: ``has(trigger.body.note)`` tests it, ``get(trigger.body,
"customer.tier", "standard")`` (or ``trigger.body.get("customer.tier", "standard")``) reads
it with a default, walking a dotted path through maps and list indexes. ``orValue`` is the
same function under CEL's optional-value name. Lists of numbers: ``sum``, ``min``, ``max``,
``avg`` (``sum(trigger.body.lines.map(l, l.amount))`` or ``....map(l, l.amount).sum()``);
``sum`` and ``avg`` of an empty list are 0, ``min`` and ``max`` of one fail with a message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

MISSING = object()


class HelperError(ValueError):
    """A helper was called with what it cannot use; the message says what it expected."""


def get(container: Any, path: Any, default: Any = None) -> Any:
    """``container`` followed along the dotted ``path``, or ``default`` where it stops."""
    current = container
    for part in str(path).split("."):
        current = _step(current, part)
        if current is MISSING:
            return default
    return current


def _step(current: Any, part: str) -> Any:
    if isinstance(current, dict):
        return current.get(part, MISSING)
    if isinstance(current, list) and part.lstrip("-").isdigit():
        index = int(part)
        return current[index] if -len(current) <= index < len(current) else MISSING
    return MISSING


def _numbers(name: str, values: Any) -> list[float | int]:
    if not isinstance(values, list):
        raise HelperError(f"{name}() takes a list of numbers, not {type(values).__name__}")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise HelperError(f"{name}() takes a list of numbers; it holds {value!r}")
    return values


def total(values: Any) -> float | int:
    return sum(_numbers("sum", values))


def smallest(values: Any) -> float | int:
    numbers = _numbers("min", values)
    if not numbers:
        raise HelperError("min() of an empty list has no value: test size() first")
    return min(numbers)


def largest(values: Any) -> float | int:
    numbers = _numbers("max", values)
    if not numbers:
        raise HelperError("max() of an empty list has no value: test size() first")
    return max(numbers)


def average(values: Any) -> float:
    numbers = _numbers("avg", values)
    return sum(numbers) / len(numbers) if numbers else 0.0


HELPERS: dict[str, Callable[..., Any]] = {
    "get": get,
    "orValue": get,
    "sum": total,
    "min": smallest,
    "max": largest,
    "avg": average,
}


def with_helpers(scope: dict[str, Any]) -> dict[str, Any]:
    """``scope`` with the helpers added; a variable of the same name wins."""
    return {**HELPERS, **scope}


# How the CEL library reports a helper's HelperError: keep the helper's own sentence.
_HELPER_FAILURE = re.compile(r"HelperError: (?P<message>.*?)\.? Check function arguments")
MISSING_FIELD_HINT = "test it with has(...), or read it with get(map, 'path', default)"


def helper_failure(message: str) -> str | None:
    """The helper's message inside the library's report, or None if not a helper's."""
    found = _HELPER_FAILURE.search(message)
    return found.group("message") if found else None
