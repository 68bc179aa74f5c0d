"""Canary traffic share through the real service: a model.predict step asking for
``production`` is served by the canary for the share of runs the approval set, a run is
sticky, and the step records which alias and version served it."""

from __future__ import annotations

import uuid

import httpx
import pytest

from apps.mlmodels import registry
from apps.mlmodels.blocks import ModelPredictBlock, ModelPredictConfig, ModelServiceClient
from apps.mlmodels.training import CANARY_SHARE_TAG, CLAIM_FRAUD, THRESHOLDS_TAG
from tests.blocks.fakes import FakeContext
from tests.mlmodels.helpers import (
    CLAIM,
    SHIPPED_THRESHOLDS,
    mlflow_client,
    promote_with_second_admin,
)
from workers.serving.service import canary_bucket

pytestmark = [pytest.mark.slow]

RUNS = [str(uuid.UUID(int=number)) for number in range(60)]


def predict_in_run(service_url: str, run_id: str):
    context = FakeContext(
        scope={"trigger": {"body": CLAIM}},
        services={"models": ModelServiceClient("w", base_url=service_url)},
        run_id=run_id,
    )
    config = ModelPredictConfig(
        model=CLAIM_FRAUD, inputs={name: f"trigger.body.{name}" for name in CLAIM}
    )
    return ModelPredictBlock().execute(context, config, None)


def served(service_url: str) -> dict[str, tuple[str, str]]:
    """run id → (alias, version) that served its production call."""
    answers = {}
    for run_id in RUNS:
        output = predict_in_run(service_url, run_id).output
        answers[run_id] = (output["alias"], output["version"])
    return answers


def set_share(model_stack, share: int) -> None:
    client = mlflow_client(model_stack)
    client.set_registered_model_tag(CLAIM_FRAUD, CANARY_SHARE_TAG, str(share))
    httpx.post(f"{model_stack.service.url}/refresh", json={}, timeout=10).raise_for_status()


@pytest.fixture
def canary_on_v2(db, workspace, admin_user, model_stack, registry_settings):
    """Production on v1; canary v2 at 0 %, set through a request and a second approval."""
    client = mlflow_client(model_stack)
    client.set_registered_model_alias(CLAIM_FRAUD, "production", "1")
    client.set_registered_model_tag(CLAIM_FRAUD, THRESHOLDS_TAG, SHIPPED_THRESHOLDS)
    approved = promote_with_second_admin(
        workspace, admin_user, CLAIM_FRAUD, "2", alias="canary", canary_share=0
    )
    assert approved.status == "approved", approved.reasons
    yield
    client.delete_registered_model_alias(CLAIM_FRAUD, "canary")
    set_share(model_stack, 0)


def test_share_zero_hundred_and_between_route_runs_as_stated_and_sticky(canary_on_v2, model_stack):
    url = model_stack.service.url
    model = registry.get_model(CLAIM_FRAUD)
    assert model.aliases == {"production": "1", "canary": "2"} and model.canary_share == 0
    assert set(served(url).values()) == {("production", "1")}

    set_share(model_stack, 100)
    assert set(served(url).values()) == {("canary", "2")}

    set_share(model_stack, 30)
    split = served(url)
    on_canary = [run for run, answer in split.items() if answer == ("canary", "2")]
    on_production = [run for run, answer in split.items() if answer == ("production", "1")]
    assert len(on_canary) + len(on_production) == len(RUNS)
    assert 0.15 <= len(on_canary) / len(RUNS) <= 0.45, len(on_canary)
    # Sticky: the same run is served by the same side on every call.
    assert served(url) == split
    # Raising the share only adds runs to the canary; none of them moves back.
    set_share(model_stack, 60)
    wider = served(url)
    assert all(wider[run] == ("canary", "2") for run in on_canary)
    assert sum(answer[0] == "canary" for answer in wider.values()) > len(on_canary)


def test_the_step_records_the_alias_and_version_that_served_it(canary_on_v2, model_stack):
    set_share(model_stack, 100)
    result = predict_in_run(model_stack.service.url, RUNS[0])
    assert result.output["alias"] == "canary" and result.output["version"] == "2"
    assert result.meta["model_alias"] == "canary" and result.meta["model_version"] == "2"
    # Asking for the canary, or an exact version, is never re-routed.
    body = {"model": CLAIM_FRAUD, "version": "1", "inputs": [CLAIM], "route_key": RUNS[0]}
    exact = httpx.post(f"{model_stack.service.url}/predict", json=body, timeout=30).json()
    assert exact["version"] == "1" and exact["alias"] == ""


def test_without_a_run_id_production_is_production(canary_on_v2, model_stack):
    set_share(model_stack, 100)
    body = {"model": CLAIM_FRAUD, "alias": "production", "inputs": [CLAIM]}
    answer = httpx.post(f"{model_stack.service.url}/predict", json=body, timeout=30).json()
    assert answer["alias"] == "production" and answer["version"] == "1"


def test_a_flow_run_on_a_worker_is_routed_by_its_own_id(
    transactional_db, workspace, builder_user, admin_user, model_stack, registry_settings,
    start_worker,
):  # fmt: skip
    """Two steps of one real run ask for production at a 50 % share: both are served by the
    side the run's id falls on, and the steps record which alias and version that was."""
    from apps.runs.blocks import envelope
    from apps.runs.models import StepRun
    from apps.runs.services import run_start
    from tests.mlmodels.test_flow_run import wait_for_run
    from tests.runs.helpers import definition, node, published_flow

    client = mlflow_client(model_stack)
    client.set_registered_model_alias(CLAIM_FRAUD, "production", "1")
    client.set_registered_model_alias(CLAIM_FRAUD, "canary", "2")
    set_share(model_stack, 50)
    start_worker(environment={"MODEL_SERVICE_URL": model_stack.service.url})
    inputs = {name: f"trigger.body.{name}" for name in CLAIM}
    flow = published_flow(
        workspace,
        builder_user,
        definition(
            [
                node("start", "trigger.manual"),
                node("first", "model.predict", model=CLAIM_FRAUD, inputs=inputs),
                node("second", "model.predict", model=CLAIM_FRAUD, inputs=inputs),
            ],
            [("start", "first"), ("first", "second", "out")],
        ),
        name="Claim scoring, twice",
    )
    try:
        runs = [
            run_start(flow=flow, trigger="manual", payload=envelope(CLAIM)).run for _ in range(6)
        ]
        for run in runs:
            run = wait_for_run(run)
            assert run.status == "succeeded", run.error
            first, second = (
                StepRun.objects.get(run=run, node_id=node_id, status="succeeded").output
                for node_id in ("first", "second")
            )
            # The run's own id is the routing key: its bucket says which side serves it.
            canary = canary_bucket(CLAIM_FRAUD, str(run.id)) < 50
            expected = ("canary", "2") if canary else ("production", "1")
            assert (first["alias"], first["version"]) == expected
            assert (second["alias"], second["version"]) == expected  # the run is sticky
    finally:
        client.delete_registered_model_alias(CLAIM_FRAUD, "canary")
        set_share(model_stack, 0)
