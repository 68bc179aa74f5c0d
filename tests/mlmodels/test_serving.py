"""A real MLflow registry and a real BentoML service: listing, predicting, bad input."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from apps.blocks.base import BlockError
from apps.mlmodels import registry
from apps.mlmodels.blocks import ModelPredictBlock, ModelPredictConfig, ModelServiceClient
from apps.mlmodels.training import CLAIM_FRAUD
from tests.blocks.fakes import FakeContext
from tests.mlmodels.helpers import CLAIM, INPUTS

pytestmark = pytest.mark.slow


def predict(url: str, **body) -> httpx.Response:
    return httpx.post(f"{url}/predict", json=body, timeout=30)


def test_the_registry_lists_versions_with_metrics_aliases_signature_and_checksum(
    registry_settings, trained_models
):
    [model] = [m for m in registry.list_models() if m.name == CLAIM_FRAUD]
    assert [v.version for v in model.versions] == ["2", "1"]
    assert model.aliases["production"]  # set to version 1 on first registration
    assert model.thresholds == {"accuracy": 0.8, "f1_macro": 0.7}
    by_version = {v.version: v for v in model.versions}
    for trained in trained_models:
        assert by_version[trained.version].metrics["accuracy"] == trained.metrics["accuracy"]
        assert by_version[trained.version].params["C"]
    version = registry.get_version(CLAIM_FRAUD, "2")
    assert [field["name"] for field in version.signature["inputs"]] == list(CLAIM)
    assert version.sha256 == trained_models[1].sha256
    assert registry.computed_sha256(CLAIM_FRAUD, "2") == version.sha256
    with pytest.raises(registry.RegistryNotFound):
        registry.get_model("no-such-model")


def test_the_service_answers_with_the_exact_version_by_alias_or_number(model_stack, trained_models):
    url = model_stack.service.url
    by_version = predict(url, model=CLAIM_FRAUD, version="2", inputs=[CLAIM]).json()
    assert by_version["version"] == "2" and by_version["alias"] == ""
    [prediction] = by_version["predictions"]
    assert prediction["label"] == "fraud"
    assert set(prediction["scores"]) == {"fraud", "legit"}
    assert prediction["score"] == max(prediction["scores"].values())

    current = registry_version(model_stack, "production")
    by_alias = predict(url, model=CLAIM_FRAUD, alias="production", inputs=[CLAIM]).json()
    assert by_alias["version"] == current and by_alias["alias"] == "production"


def registry_version(model_stack, alias: str) -> str:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=model_stack.mlflow.url, registry_uri=model_stack.mlflow.url)
    return str(client.get_model_version_by_alias(CLAIM_FRAUD, alias).version)


def test_inputs_that_do_not_match_the_signature_are_a_400_naming_the_field(
    model_stack, trained_models
):
    url = model_stack.service.url
    missing = {k: v for k, v in CLAIM.items() if k != "channel"}
    response = predict(url, model=CLAIM_FRAUD, version="1", inputs=[missing])
    assert response.status_code == 400 and "missing field 'channel'" in response.text
    wrong = {**CLAIM, "amount": "lots"}
    response = predict(url, model=CLAIM_FRAUD, version="1", inputs=[wrong])
    assert response.status_code == 400 and "field 'amount' must be a number" in response.text
    response = predict(url, model="no-such-model", inputs=[CLAIM])
    assert response.status_code == 404
    assert httpx.get(f"{url}/livez", timeout=5).status_code == 200


def test_the_block_through_the_real_service(model_stack, trained_models):
    def run(body, **config):
        context = FakeContext(
            scope={"trigger": {"body": body}},
            services={"models": ModelServiceClient("w", base_url=model_stack.service.url)},
        )
        config = ModelPredictConfig(**{"model": CLAIM_FRAUD, "inputs": INPUTS, **config})
        return ModelPredictBlock().execute(context, config, None)

    result = run(CLAIM, version="2", threshold=0.5)
    assert result.port == "out"
    assert result.meta["batch_size"] >= 1  # answered by the batched endpoint
    assert result.output["label"] == "fraud" and result.output["version"] == "2"
    assert result.meta["model_version"] == "2" and result.meta["latency_ms"] > 0
    # No score reaches 1.0 exactly: a threshold of 1.0 always routes to low_confidence.
    assert run(CLAIM, version="2", threshold=1.0).port == "low_confidence"

    with pytest.raises(BlockError) as raised:
        run({**CLAIM, "prior_claims": "two"}, version="2")
    assert raised.value.retryable is False
    assert "field 'prior_claims' must be a number" in raised.value.message


def test_batched_rows_are_answered_in_order_each_with_its_own_version_or_error(
    model_stack, trained_models
):
    rows = [
        {"model": CLAIM_FRAUD, "version": "2", "inputs": CLAIM},
        {"model": CLAIM_FRAUD, "version": "1", "inputs": CLAIM},
        {"model": CLAIM_FRAUD, "version": "2", "inputs": {**CLAIM, "channel": None}},
        {"model": "no-such-model", "inputs": CLAIM},
    ]
    response = httpx.post(
        f"{model_stack.service.url}/predict_rows", json={"rows": rows}, timeout=30
    )
    assert response.status_code == 200, response.text
    first, second, missing, unknown = response.json()
    assert first["version"] == "2" and first["label"] == "fraud" and first["alias"] == ""
    assert second["version"] == "1" and set(second["scores"]) == {"fraud", "legit"}
    # A refused row names the version that refused it (monitoring counts its errors).
    assert missing == {
        "error": "inputs[0] is missing field 'channel'",
        "status": 400,
        "model": CLAIM_FRAUD,
        "version": "2",
        "alias": "",
    }
    assert unknown["status"] == 404


def test_concurrent_block_calls_share_batches_of_the_batched_endpoint(model_stack, trained_models):
    """Steps running at the same time are scored together (BentoML adaptive batching):
    each still gets its own answer, and some answers report a batch of more than one row."""
    client = ModelServiceClient("w", base_url=model_stack.service.url)
    amounts = [100 + 400 * number for number in range(48)]

    def call(amount: int):
        context = FakeContext(
            scope={"trigger": {"body": {**CLAIM, "amount": amount}}},
            services={"models": client},
        )
        config = ModelPredictConfig(model=CLAIM_FRAUD, inputs=INPUTS, version="2")
        return ModelPredictBlock().execute(context, config, None)

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(call, amounts))
    singles = [call(amount) for amount in (amounts[0], amounts[-1])]
    assert results[0].output["scores"] == singles[0].output["scores"]  # answers stay in order
    assert results[-1].output["scores"] == singles[1].output["scores"]
    assert all(result.output["version"] == "2" for result in results)
    assert max(result.meta["batch_size"] for result in results) > 1


def test_model_steps_under_way_together_share_one_request(model_stack, trained_models, settings):
    """Sixteen steps started together (a drain's runs) send their rows in one
    /predict_rows request: the service scores them as one batch of sixteen, and each step
    gets its own row's answer."""
    # The request leaves when every announced step has joined; the join window only bounds
    # a step slow to join. On a busy machine a thread released by the barrier can take
    # longer than the default window to send, so the window is wide here: what is asserted
    # is that announced rows are waited for, not how fast threads are scheduled.
    settings.FLOWGATE = {**settings.FLOWGATE, "MODEL_BATCH_JOIN_SECONDS": 20}
    client = ModelServiceClient("w", base_url=model_stack.service.url)
    step_alone(client, 100)  # the version's first load takes seconds: not in this request
    amounts = [100 + 900 * number for number in range(16)]
    together = threading.Barrier(len(amounts))

    def step(amount: int):
        context = FakeContext(
            scope={"trigger": {"body": {**CLAIM, "amount": amount}}},
            services={"models": _Announced(client, together)},
        )
        config = ModelPredictConfig(model=CLAIM_FRAUD, inputs=INPUTS, version="2")
        return ModelPredictBlock().execute(context, config, None)

    with ThreadPoolExecutor(len(amounts)) as pool:
        results = list(pool.map(step, amounts))
    assert {result.meta["batch_size"] for result in results} == {len(amounts)}
    alone = [step_alone(client, amount) for amount in (amounts[0], amounts[-1])]
    assert results[0].output["scores"] == alone[0].output["scores"]
    assert results[-1].output["scores"] == alone[1].output["scores"]
    assert alone[0].meta["batch_size"] == 1


def test_a_step_slow_to_send_its_row_holds_up_the_others_for_the_join_window_only(
    model_stack, trained_models, settings
):
    """A step that announced its row and has not sent it yet (building its input) is
    waited for at most MODEL_BATCH_JOIN_SECONDS: the others get their answers meanwhile."""
    settings.FLOWGATE = {**settings.FLOWGATE, "MODEL_BATCH_JOIN_SECONDS": 0.05}
    client = ModelServiceClient("w", base_url=model_stack.service.url)
    step_alone(client, 100)  # the version's first load takes seconds
    announced, others_answered = threading.Event(), threading.Event()

    def slow() -> bool:
        with client.expecting_row():
            announced.set()
            return others_answered.wait(30)  # its input takes long; the others go ahead

    with ThreadPoolExecutor(4) as pool:
        held = pool.submit(slow)
        announced.wait(30)
        results = list(pool.map(lambda amount: step_alone(client, amount), (100, 5000, 9000)))
        others_answered.set()
        assert held.result() is True
    assert all(result.output["version"] == "2" for result in results)


class _Announced:
    """The client, with every step announced before any sends (a barrier)."""

    def __init__(self, client: ModelServiceClient, barrier: threading.Barrier) -> None:
        self.client, self.barrier = client, barrier

    def expecting_row(self):
        announced = self.client.expecting_row()
        announced.__enter__()
        self.barrier.wait(30)
        return _Entered(announced)

    def __getattr__(self, name: str):
        return getattr(self.client, name)


class _Entered:
    def __init__(self, announced) -> None:
        self.announced = announced

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info) -> None:
        self.announced.__exit__(*exc_info)


def step_alone(client: ModelServiceClient, amount: int):
    context = FakeContext(
        scope={"trigger": {"body": {**CLAIM, "amount": amount}}}, services={"models": client}
    )
    config = ModelPredictConfig(model=CLAIM_FRAUD, inputs=INPUTS, version="2")
    return ModelPredictBlock().execute(context, config, None)
