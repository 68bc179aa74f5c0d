"""model.predict without servers: config validation, ports, and a service that is down."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from apps.blocks.base import BlockError
from apps.blocks.registry import registry
from apps.mlmodels.blocks import (
    LOW_CONFIDENCE,
    ModelPredictBlock,
    ModelPredictConfig,
    ModelServiceClient,
)
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


def answer(score: float) -> dict:
    return {
        "model": "claim-fraud",
        "version": "7",
        "alias": "production",
        "predictions": [
            {"label": "fraud", "score": score, "scores": {"fraud": score, "legit": 1 - score}}
        ],
        "latency_ms": 1.5,
        "device": "cpu",
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
    assert models.calls[0]["inputs"] == [{"amount": 900, "channel": "web"}]
    assert models.calls[0]["alias"] == "production" and models.calls[0]["version"] == ""
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
    with pytest.raises(ValidationError):
        ModelPredictConfig(model="m", inputs={})
    with pytest.raises(ValidationError):
        ModelPredictConfig(model="m", inputs=INPUTS, alias="", version="")
    with pytest.raises(ValidationError):
        ModelPredictConfig(model="m", inputs=INPUTS, threshold=1.5)


def test_a_service_that_is_down_is_a_retryable_error_naming_it():
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(BlockError) as raised:
        run(ModelServiceClient("workspace-1", base_url=url))
    assert raised.value.retryable is True
    assert f"the model service at {url} is unavailable" in raised.value.message


def test_block_and_service_are_registered():
    assert registry.get("model.predict") is ModelPredictBlock
    assert registry.service_factory("models") is ModelServiceClient
