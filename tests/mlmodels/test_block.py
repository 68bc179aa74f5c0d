"""model.predict without model servers: config, ports, a service that is down, the circuit
breaker (in the tests' Redis), fallback and shadow calls."""

from __future__ import annotations

import contextlib
import uuid

import pytest
import redis
from django.conf import settings
from pydantic import ValidationError

from apps.blocks.base import BlockError
from apps.blocks.registry import registry
from apps.mlmodels.blocks import (
    FALLBACK,
    LOW_CONFIDENCE,
    ModelPredictBlock,
    ModelPredictConfig,
    ModelServiceClient,
)
from apps.mlmodels.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from tests.blocks.fakes import FakeContext
from tests.support.processes import free_port

INPUTS = {"amount": "trigger.body.amount", "channel": "trigger.body.channel"}


class RecordingModels:
    def __init__(self, answer):
        self.answer = answer
        self.calls = []

    def predict(self, **kwargs):
        self.calls.append(kwargs)
        return self.answer

    def expecting_row(self):
        return contextlib.nullcontext()


def answer(score: float) -> dict:
    return {
        "model": "claim-fraud",
        "version": "7",
        "alias": "production",
        "label": "fraud",
        "score": score,
        "scores": {"fraud": score, "legit": 1 - score},
        "latency_ms": 1.5,
        "device": "cpu",
        "batch_size": 1,
    }


def run(models, **config):
    context = FakeContext(
        scope={"trigger": {"body": {"amount": 900, "channel": "web"}}},
        services={"models": models},
    )
    config = ModelPredictConfig(**{"model": "claim-fraud", "inputs": INPUTS, **config})
    return ModelPredictBlock().execute(context, config, None)


def test_prediction_carries_the_exact_model_version_in_output_and_meta():
    models = RecordingModels(answer(0.9))
    result = run(models)
    assert models.calls[0]["inputs"] == {"amount": 900, "channel": "web"}
    assert models.calls[0]["alias"] == "production" and models.calls[0]["version"] == ""
    assert models.calls[0]["route_key"] == "run-1"  # the run id: a run is sticky
    assert result.port == "out"
    assert result.output["label"] == "fraud" and result.output["version"] == "7"
    assert result.meta["model"] == "claim-fraud" and result.meta["model_version"] == "7"


def test_a_score_below_the_threshold_takes_low_confidence():
    assert run(RecordingModels(answer(0.55)), threshold=0.8).port == LOW_CONFIDENCE
    assert run(RecordingModels(answer(0.95)), threshold=0.8).port == "out"


def test_an_exact_version_is_asked_for_without_an_alias():
    models = RecordingModels(answer(0.9))
    run(models, version="3")
    assert models.calls[0]["version"] == "3" and models.calls[0]["alias"] == ""


def test_ports_and_config_validation():
    assert ModelPredictBlock.output_ports(ModelPredictConfig(model="m", inputs=INPUTS)) == ("out",)
    with_threshold = ModelPredictConfig(model="m", inputs=INPUTS, threshold=0.5)
    assert ModelPredictBlock.output_ports(with_threshold) == ("out", LOW_CONFIDENCE)
    with_fallback = ModelPredictConfig(model="m", inputs=INPUTS, fallback=True)
    assert ModelPredictBlock.output_ports(with_fallback) == ("out", FALLBACK)
    with pytest.raises(ValidationError):
        ModelPredictConfig(model="m", inputs={})
    with pytest.raises(ValidationError):
        ModelPredictConfig(model="m", inputs=INPUTS, alias="", version="")
    with pytest.raises(ValidationError):
        ModelPredictConfig(model="m", inputs=INPUTS, threshold=1.5)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(threshold: int = 2, clock=None) -> CircuitBreaker:
    return CircuitBreaker(
        f"test-{uuid.uuid4().hex}",
        threshold=threshold,
        cooldown=10,
        client=redis.Redis.from_url(settings.REDIS_URL),
        clock=clock or Clock(),
    )


def dead_service(**kwargs) -> ModelServiceClient:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    return ModelServiceClient("workspace-1", base_url=url, breaker=breaker(**kwargs))


def test_a_service_that_is_down_is_a_retryable_error_naming_it():
    service = dead_service()
    with pytest.raises(BlockError) as raised:
        run(service)
    assert raised.value.retryable is True
    assert f"the model service at {service.base_url} is unavailable" in raised.value.message


def test_with_fallback_a_service_that_is_down_takes_the_fallback_port():
    result = run(dead_service(), fallback=True)
    assert result.port == FALLBACK
    assert "is unavailable" in result.output["error"]
    assert result.meta["circuit_open"] is False


def test_the_circuit_opens_after_consecutive_failures_and_then_fails_fast():
    service = dead_service(threshold=2)
    for _ in range(2):
        with pytest.raises(BlockError):
            run(service)
    assert service.breaker.state() == OPEN
    with pytest.raises(BlockError) as raised:
        run(service)
    assert "circuit open, next probe in 10s" in raised.value.message
    result = run(service, fallback=True)
    assert result.port == FALLBACK and result.meta["circuit_open"] is True


def test_half_open_lets_one_probe_through_and_its_outcome_decides():
    clock = Clock()
    circuit = breaker(threshold=2, clock=clock)
    assert circuit.state() == CLOSED and circuit.allow()
    circuit.failure()
    assert circuit.state() == CLOSED
    circuit.failure()
    assert circuit.state() == OPEN and not circuit.allow()
    clock.now += 11
    assert circuit.state() == HALF_OPEN
    assert circuit.allow() is True  # the probe
    assert circuit.allow() is False  # everyone else waits for it
    circuit.failure()  # the probe failed: open again for a full cooldown
    assert circuit.state() == OPEN
    clock.now += 11
    assert circuit.allow() is True
    circuit.success()
    assert circuit.state() == CLOSED and circuit.allow()


class CountingRedis(redis.Redis):
    """The tests' Redis, counting the commands sent to it."""

    commands = 0

    def execute_command(self, *args, **options):
        self.commands += 1
        return super().execute_command(*args, **options)


def test_a_healthy_call_costs_one_redis_command_and_a_success_still_resets_failures():
    counting = CountingRedis.from_url(settings.REDIS_URL)
    circuit = CircuitBreaker(f"test-{uuid.uuid4().hex}", threshold=2, cooldown=10, client=counting)
    assert circuit.allow()
    circuit.success()
    assert counting.commands == 1  # nothing to reset: the success sent nothing
    circuit.failure()
    assert circuit.allow()  # one failure: still closed
    circuit.success()  # resets it: failures must be consecutive to open the circuit
    circuit.failure()
    assert circuit.state() == CLOSED and circuit.allow()


def test_a_shadow_alias_is_called_and_logged_but_not_used():
    models = RecordingModels(answer(0.9))
    result = run(models, shadow_alias="canary")
    assert [call["alias"] for call in models.calls] == ["production", "canary"]
    assert result.meta["shadow"] == {
        "alias": "canary",
        "version": "7",
        "label": "fraud",
        "score": 0.9,
    }
    assert result.output["version"] == "7" and result.port == "out"


def test_block_and_service_are_registered():
    assert registry.get("model.predict") is ModelPredictBlock
    assert registry.service_factory("models") is ModelServiceClient
