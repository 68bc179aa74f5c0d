"""JSON from outside that Postgres can store.

``jsonb`` refuses what JSON itself allows: the character U+0000, unpaired surrogates
(``"\\ud800"``), and numbers beyond a double (``1e400``, and Python's ``NaN`` and
``Infinity``). Python's parser also gives up past its recursion limit. Left unchecked these
surface as a 500 deep inside a save; checked here, the caller answers 400 saying what is
wrong, before anything is written.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 100


class UnstorableJSON(ValueError):
    """The text is not JSON, or is JSON that cannot be stored; the message says why."""


def loads(text: str | bytes) -> Any:
    """Parse ``text``; raise ``UnstorableJSON`` unless the value can be stored as it is."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise UnstorableJSON(f"it is nested more than {MAX_DEPTH} levels deep") from None
    except UnicodeDecodeError as error:
        raise UnstorableJSON(f"it is not UTF-8 ({error.reason})") from None
    except UnstorableJSON:
        raise
    except ValueError as error:
        raise UnstorableJSON(f"it is not valid JSON: {error}") from None
    problem = storage_problem(value)
    if problem:
        raise UnstorableJSON(problem)
    return value


def storage_problem(value: Any) -> str | None:
    """Why ``value`` (parsed JSON, a block's output) cannot be stored, or None."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > MAX_DEPTH:
            return f"it is nested more than {MAX_DEPTH} levels deep"
        if isinstance(item, str):
            problem = _text_problem(item)
        elif isinstance(item, dict):
            problem = next(filter(None, map(_key_problem, item)), None)
            pending.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list | tuple):
            problem = None
            pending.extend((child, depth + 1) for child in item)
        elif isinstance(item, float) and not math.isfinite(item):
            problem = f"it holds the number {item}, which JSON storage cannot represent"
        else:
            problem = None
        if problem:
            return problem
    return None


def _key_problem(key: Any) -> str | None:
    return _text_problem(key) if isinstance(key, str) else None


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "a text holds the character U+0000 (\\u0000), which cannot be stored"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "a text holds an unpaired surrogate (like \\ud800), which is not Unicode"
    return None


def _refuse_constant(name: str) -> Any:
    raise UnstorableJSON(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise UnstorableJSON(f"the number {text} is too large to store")
    return number
