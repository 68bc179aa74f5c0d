"""Model rows of one process sent together: one ``/predict_rows`` request for the model
steps that are under way at the same moment (a drain's runs, whose calls the engine
launches together on its I/O threads; concurrent sync webhooks).

A model step announces itself when it starts (``expecting``), before it builds its input;
its row then joins the request being formed for the same service, or starts one. The
step that starts a request sends it as soon as every announced step has joined, the
request is full (``MODEL_BATCH_MAX_ROWS``) or ``MODEL_BATCH_JOIN_SECONDS`` have passed,
whichever comes first: a step alone sends at once, and a step that is slow to build its
input holds the others up for the join window at most (it sends its row in a later
request). Each row has its own answer: a row the service refused fails only its step.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

# (rows, timeout) → one answer per row, or raises for the whole request.
Send = Callable[[list[dict[str, Any]], float], list[Any]]


@dataclass(eq=False)
class _Row:
    row: dict[str, Any]
    timeout: float
    done: threading.Event = field(default_factory=threading.Event)
    answer: Any = None
    error: BaseException | None = None


@dataclass(eq=False)
class _Request:
    rows: list[_Row] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)


class RowBatcher:
    """Per service (its base URL): the request being formed and the steps announced."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._forming: dict[str, _Request] = {}
        self._expected: Counter[str] = Counter()
        self._announced = threading.local()  # the service this thread's step announced

    @contextmanager
    def expecting(self, service: str) -> Iterator[None]:
        """Around a model step: its row is on its way to ``service``."""
        with self._lock:
            self._expected[service] += 1
        self._announced.service = service
        try:
            yield
        finally:
            if getattr(self._announced, "service", None) == service:  # never sent a row
                self._announced.service = None
                with self._lock:
                    self._expected[service] -= 1
                    self._release_if_complete(service)

    def predict(self, service: str, row: dict[str, Any], timeout: float, send: Send) -> Any:
        """``row``'s answer, from one request with the rows of the steps under way."""
        mine = _Row(row, timeout)
        with self._lock:
            if getattr(self._announced, "service", None) == service:
                self._announced.service = None
                self._expected[service] -= 1
            request = self._forming.get(service)
            leads = request is None
            if request is None:
                request = self._forming[service] = _Request()
            request.rows.append(mine)
            if len(request.rows) >= int(settings.FLOWGATE["MODEL_BATCH_MAX_ROWS"]):
                del self._forming[service]
                request.ready.set()
            else:
                self._release_if_complete(service)
        if leads:
            request.ready.wait(float(settings.FLOWGATE["MODEL_BATCH_JOIN_SECONDS"]))
            with self._lock:
                if self._forming.get(service) is request:
                    del self._forming[service]
            _send(request.rows, send)
        elif not mine.done.wait(timeout + float(settings.FLOWGATE["MODEL_BATCH_JOIN_SECONDS"])):
            raise TimeoutError(f"no answer within {timeout:g}s")
        if mine.error is not None:
            raise mine.error
        return mine.answer

    def _release_if_complete(self, service: str) -> None:
        # Under the lock: every announced step has joined, nothing more to wait for.
        request = self._forming.get(service)
        if request is not None and self._expected[service] <= 0:
            request.ready.set()


def _send(rows: list[_Row], send: Send) -> None:
    try:
        answers = send([row.row for row in rows], max(row.timeout for row in rows))
        if len(answers) != len(rows):
            raise ValueError(f"{len(answers)} answers to {len(rows)} rows")
        for row, answer in zip(rows, answers, strict=True):
            row.answer = answer
    except Exception as error:  # the request failed: every row's step fails with it
        for row in rows:
            row.error = error
    finally:
        for row in rows:
            row.done.set()


batcher = RowBatcher()
