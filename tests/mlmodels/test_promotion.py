"""Promotion through the model_promotion gate moves the alias; the service follows at once."""

from __future__ import annotations

import httpx
import pytest

from apps.audit.models import AuditEvent
from apps.mlmodels import registry
from apps.mlmodels.services import model_promote, model_rollback
from apps.mlmodels.training import CLAIM_FRAUD, SHA256_TAG, THRESHOLDS_TAG
from tests.mlmodels.helpers import CLAIM

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


def served_version(model_stack) -> str:
    body = {"model": CLAIM_FRAUD, "alias": "production", "inputs": [CLAIM]}
    return httpx.post(f"{model_stack.service.url}/predict", json=body, timeout=30).json()["version"]


def client(model_stack):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=model_stack.mlflow.url, registry_uri=model_stack.mlflow.url)


def reset_production(model_stack) -> None:
    client(model_stack).set_registered_model_alias(CLAIM_FRAUD, "production", "1")
    httpx.post(f"{model_stack.service.url}/refresh", json={}, timeout=10).raise_for_status()


@pytest.fixture
def production_on_v1(model_stack, registry_settings):
    reset_production(model_stack)
    yield
    reset_production(model_stack)


def test_a_version_below_the_thresholds_is_denied_with_reasons(
    workspace, admin_user, production_on_v1, trained_models
):
    v1 = trained_models[0]
    assert v1.metrics["accuracy"] < 0.8  # the weak baseline
    outcome = model_promote(
        workspace=workspace, actor=admin_user, name=CLAIM_FRAUD, version="1", alias="canary"
    )
    assert not outcome.allowed
    assert f"metric accuracy = {v1.metrics['accuracy']} is below 0.8" in outcome.reasons
    assert "canary" not in registry.get_model(CLAIM_FRAUD).aliases
    event = AuditEvent.objects.get(action="model.promotion_denied")
    assert event.data["version"] == "1" and event.data["allow"] is False


def test_a_checksum_mismatch_is_denied(workspace, admin_user, production_on_v1, model_stack):
    mlflow = client(model_stack)
    recorded = mlflow.get_model_version(CLAIM_FRAUD, "2").tags[SHA256_TAG]
    mlflow.set_model_version_tag(CLAIM_FRAUD, "2", SHA256_TAG, "0" * 64)
    try:
        outcome = model_promote(
            workspace=workspace, actor=admin_user, name=CLAIM_FRAUD, version="2"
        )
    finally:
        mlflow.set_model_version_tag(CLAIM_FRAUD, "2", SHA256_TAG, recorded)
    assert not outcome.allowed
    assert outcome.reasons == ["the artifact checksum does not match the registered one"]
    assert served_version(model_stack) == "1"


def test_promotion_moves_the_alias_the_service_follows_and_rollback_returns(
    workspace, admin_user, production_on_v1, model_stack
):
    assert served_version(model_stack) == "1"
    outcome = model_promote(workspace=workspace, actor=admin_user, name=CLAIM_FRAUD, version="2")
    assert outcome.allowed, outcome.reasons
    assert outcome.previous == "1"
    assert registry.get_model(CLAIM_FRAUD).aliases["production"] == "2"
    assert served_version(model_stack) == "2"  # no restart: the next call gets the new version
    event = AuditEvent.objects.get(action="model.promoted")
    assert event.actor_id == admin_user.id
    assert event.data["version"] == "2" and event.data["previous_version"] == "1"
    assert AuditEvent.objects.filter(action="gate.evaluated", object_id="model_promotion").exists()

    # Rolling back goes through the same gate: version 1 is below the thresholds...
    denied = model_rollback(workspace=workspace, actor=admin_user, name=CLAIM_FRAUD)
    assert not denied.allowed and denied.version == "1"
    assert served_version(model_stack) == "2"
    # ...until the model's thresholds allow it.
    mlflow = client(model_stack)
    mlflow.set_registered_model_tag(CLAIM_FRAUD, THRESHOLDS_TAG, '{"accuracy": 0.5}')
    try:
        rolled = model_rollback(workspace=workspace, actor=admin_user, name=CLAIM_FRAUD)
    finally:
        mlflow.set_registered_model_tag(
            CLAIM_FRAUD, THRESHOLDS_TAG, '{"accuracy": 0.8, "f1_macro": 0.7}'
        )
    assert rolled.allowed, rolled.reasons
    assert served_version(model_stack) == "1"
