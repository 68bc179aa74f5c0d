"""Which /predict_rows requests the model service answers on its event loop: rows of
loaded versions whose scoring was measured short are scored there; a request that needs
the registry, a first load or longer scoring goes to a thread, so the loop keeps answering
every other request (health checks included) meanwhile."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from workers.serving import service as serving

MODEL, VERSION = "claim-fraud", "3"


class LoadedVersion:
    """Stands for an MLflow model the service has loaded (only its identity is used)."""


@pytest.fixture
def model_service(monkeypatch):
    monkeypatch.setattr(serving.ModelService.inner, "_warm_up", lambda self: None)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # never reached
    service = serving.ModelService.inner()
    answered_on: list[str] = []

    def predict_rows(rows):
        answered_on.append(threading.current_thread().name)
        return [{"label": "legit"} for _ in rows]

    monkeypatch.setattr(service, "_predict_rows", predict_rows)
    service.answered_on = answered_on
    return service


def loaded(service, *, row_seconds: float | None) -> None:
    version = LoadedVersion()
    service._models[(MODEL, VERSION)] = version
    service._resolved[MODEL] = (({"production": VERSION}, 100), time.monotonic())
    if row_seconds is not None:
        service._row_seconds[id(version)] = row_seconds


def answer(service, rows: int) -> str:
    request = [{"model": MODEL, "alias": "production", "inputs": {}}] * rows
    asyncio.run(service.predict_rows(request))
    return "loop" if service.answered_on[-1] == threading.current_thread().name else "thread"


def test_rows_of_a_loaded_version_measured_short_are_scored_on_the_loop(model_service):
    loaded(model_service, row_seconds=0.0002)
    assert answer(model_service, rows=1) == "loop"
    assert answer(model_service, rows=16) == "loop"


def test_a_request_whose_scoring_would_take_long_goes_to_a_thread(model_service):
    loaded(model_service, row_seconds=0.0002)
    many = int(serving.ON_LOOP_SECONDS / 0.0002) + 1
    assert answer(model_service, rows=many) == "thread"
    loaded(model_service, row_seconds=0.05)  # a heavy model: one row is too long already
    assert answer(model_service, rows=1) == "thread"


def test_a_version_not_loaded_or_never_timed_goes_to_a_thread(model_service):
    assert answer(model_service, rows=1) == "thread"  # the registry and a load are needed
    loaded(model_service, row_seconds=None)  # loaded, never scored yet
    assert answer(model_service, rows=1) == "thread"
