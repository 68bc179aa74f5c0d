"""Models pages: who may see and promote, denial reasons shown, registry down said plainly."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.mlmodels.training import CLAIM_FRAUD
from tests.support.processes import free_port

pytestmark = pytest.mark.django_db


def url(name: str, **kwargs) -> str:
    return reverse(f"mlmodels:{name}", kwargs={"workspace_slug": "acme", **kwargs})


PROMOTE_V2 = {"model_name": CLAIM_FRAUD, "version": 2}


@pytest.fixture
def registry_down(settings):
    dead = f"http://127.0.0.1:{free_port()}"
    settings.FLOWGATE = {**settings.FLOWGATE, "MLFLOW_TRACKING_URI": dead}
    return dead


def test_only_admins_may_promote_or_roll_back(builder_client, reviewer_client, registry_down):
    for client in (builder_client, reviewer_client):
        assert client.post(url("promote", **PROMOTE_V2), {"alias": "production"}).status_code == 403
        assert client.post(url("rollback", model_name=CLAIM_FRAUD)).status_code == 403


def test_other_workspaces_and_anonymous_users_cannot_see_models(outsider_client, client, workspace):
    assert outsider_client.get(url("list")).status_code == 404
    assert outsider_client.post(url("promote", **PROMOTE_V2)).status_code == 404
    assert client.get(url("list")).status_code == 302


def test_a_registry_that_is_down_is_reported_not_a_crash(reviewer_client, registry_down):
    response = reviewer_client.get(url("list"))
    assert response.status_code == 200  # the section opens and says what is wrong
    assert b"The model registry is unavailable" in response.content
    assert registry_down.encode() in response.content
    detail = reviewer_client.get(url("detail", model_name="claim-fraud"))
    assert detail.status_code == 503
    assert b"The model registry is unavailable" in detail.content


@pytest.mark.slow
def test_reviewers_see_models_versions_and_metrics_without_promote_buttons(
    reviewer_client, registry_settings, trained_models, workspace, builder_user
):
    from apps.flows.services import flow_create
    from tests.runs.helpers import definition, node

    flow_create(
        workspace=workspace,
        actor=builder_user,
        name="Claims scoring",
        definition=definition(
            [
                node("start", "trigger.manual"),
                node("score", "model.predict", model=CLAIM_FRAUD, inputs={"amount": "1"}),
            ],
            [("start", "score")],
        ),
    )
    listing = reviewer_client.get(url("list"))
    assert listing.status_code == 200
    assert CLAIM_FRAUD.encode() in listing.content and b"production" in listing.content
    assert b"Claims scoring" in listing.content  # which flows use the model
    detail = reviewer_client.get(url("detail", model_name=CLAIM_FRAUD))
    assert detail.status_code == 200
    assert str(trained_models[1].metrics["accuracy"]).encode() in detail.content
    assert b"Promote" not in detail.content
    version = reviewer_client.get(url("version", **PROMOTE_V2))
    assert version.status_code == 200
    assert trained_models[1].sha256.encode() in version.content
    assert b"days_since_policy_start" in version.content  # the signature
    assert reviewer_client.get(url("detail", model_name="no-such-model")).status_code == 404


@pytest.mark.slow
def test_admin_promotion_shows_the_gate_reasons_and_is_audited(
    admin_client, registry_settings, trained_models
):
    from mlflow import MlflowClient

    uri = registry_settings.FLOWGATE["MLFLOW_TRACKING_URI"]
    mlflow = MlflowClient(tracking_uri=uri, registry_uri=uri)
    page = admin_client.get(url("detail", model_name=CLAIM_FRAUD))
    assert b"Promote" in page.content

    denied = admin_client.post(
        url("promote", model_name=CLAIM_FRAUD, version=1), {"alias": "canary"}, follow=True
    )
    assert b"denied by the model_promotion policy" in denied.content
    assert b"metric accuracy = 0.73 is below 0.8" in denied.content
    assert "canary" not in mlflow.get_registered_model(CLAIM_FRAUD).aliases

    try:
        allowed = admin_client.post(url("promote", **PROMOTE_V2), {"alias": "canary"}, follow=True)
        assert b"claim-fraud version 2 promoted to canary" in allowed.content
        assert mlflow.get_registered_model(CLAIM_FRAUD).aliases["canary"] == "2"
        # Nothing earlier on canary: the rollback says so and changes nothing.
        rollback = admin_client.post(
            url("rollback", model_name=CLAIM_FRAUD), {"alias": "canary"}, follow=True
        )
        assert b"Rollback denied" in rollback.content
        assert b"canary has no earlier version to roll back to" in rollback.content
        assert mlflow.get_registered_model(CLAIM_FRAUD).aliases["canary"] == "2"
    finally:
        mlflow.delete_registered_model_alias(CLAIM_FRAUD, "canary")
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"model.promoted", "model.promotion_denied", "gate.evaluated"} <= actions
