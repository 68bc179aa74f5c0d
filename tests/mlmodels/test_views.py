"""Models pages: who may see, request and decide promotions, the requester never approves,
denial reasons shown, registry down said plainly."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.models import Role
from apps.audit.models import AuditEvent
from apps.mlmodels.models import PromotionRequest
from apps.mlmodels.services import promotion_request_create
from apps.mlmodels.training import CLAIM_FRAUD
from tests.factories import MembershipFactory, UserFactory
from tests.support.processes import free_port

pytestmark = pytest.mark.django_db


def url(name: str, **kwargs) -> str:
    return reverse(f"mlmodels:{name}", kwargs={"workspace_slug": "acme", **kwargs})


PROMOTE_V2 = {"model_name": CLAIM_FRAUD, "version": 2}


def request_v2(client, alias: str = "production", **extra):
    return client.post(
        url("request_promotion", **PROMOTE_V2),
        {"alias": alias, "note": "v2 is better", **extra},
        follow=True,
    )


@pytest.fixture
def registry_down(settings):
    dead = f"http://127.0.0.1:{free_port()}"
    settings.FLOWGATE = {**settings.FLOWGATE, "MLFLOW_TRACKING_URI": dead}
    return dead


def test_only_admins_may_request_decide_or_roll_back(
    builder_client, reviewer_client, registry_down, workspace, admin_user
):
    promotion = promotion_request_create(
        workspace=workspace, actor=admin_user, name=CLAIM_FRAUD, version="2", alias="production"
    )
    for client in (builder_client, reviewer_client):
        assert request_v2(client).status_code == 403
        assert client.post(url("rollback", model_name=CLAIM_FRAUD)).status_code == 403
        for verb in ("approve_promotion", "reject_promotion"):
            assert client.post(url(verb, promotion_id=promotion.id)).status_code == 403


def test_a_request_shows_as_pending_and_its_requester_cannot_approve_it(
    admin_client, workspace, admin_user, registry_down
):
    response = request_v2(admin_client, alias="canary", canary_share=25)
    assert b"another admin must approve it" in response.content
    promotion = PromotionRequest.objects.get(workspace=workspace)
    assert (promotion.alias, promotion.canary_share, promotion.status) == ("canary", 25, "pending")
    assert promotion.requested_by == admin_user
    # The requester sees it pending, without the buttons, and the server refuses anyway.
    page = admin_client.get(url("detail", model_name=CLAIM_FRAUD))
    assert page.status_code == 503  # the registry is down: the page says so...
    listing = admin_client.get(url("list"))  # ...and the section still lists the request
    assert listing.status_code == 200
    assert (
        b"claim-fraud</a> v2" in listing.content and b"25 % of production calls" in listing.content
    )
    assert b"Approve</button>" not in listing.content
    refused = admin_client.post(url("approve_promotion", promotion_id=promotion.id))
    assert refused.status_code == 403
    assert b"a different admin must approve or reject it" in refused.content
    promotion.refresh_from_db()
    assert promotion.status == "pending"


def test_a_bad_canary_share_is_refused_with_a_message(admin_client, workspace, registry_down):
    for share in ("", "101", "lots"):
        response = request_v2(admin_client, alias="canary", canary_share=share)
        assert b"needs a traffic share from 0 to 100" in response.content
    assert not PromotionRequest.objects.filter(workspace=workspace).exists()


def test_other_workspaces_and_anonymous_users_cannot_see_models(outsider_client, client, workspace):
    assert outsider_client.get(url("list")).status_code == 404
    assert outsider_client.post(url("request_promotion", **PROMOTE_V2)).status_code == 404
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
    assert b"Request promotion" not in detail.content
    assert b"Approve</button>" not in detail.content
    version = reviewer_client.get(url("version", **PROMOTE_V2))
    assert version.status_code == 200
    assert trained_models[1].sha256.encode() in version.content
    assert b"days_since_policy_start" in version.content  # the signature
    assert reviewer_client.get(url("detail", model_name="no-such-model")).status_code == 404


@pytest.mark.slow
def test_a_second_admin_approves_from_the_models_page_and_denials_show_reasons(
    admin_client, workspace, registry_settings, trained_models
):
    from mlflow import MlflowClient

    uri = registry_settings.FLOWGATE["MLFLOW_TRACKING_URI"]
    mlflow = MlflowClient(tracking_uri=uri, registry_uri=uri)
    approver = MembershipFactory(
        user=UserFactory(username="otto"), workspace=workspace, role=Role.ADMIN
    ).user
    second = Client()
    second.force_login(approver)

    page = admin_client.get(url("detail", model_name=CLAIM_FRAUD))
    assert b"Request promotion" in page.content
    version_page = admin_client.get(url("version", **PROMOTE_V2))
    assert version_page.status_code == 200
    assert f'action="{url("request_promotion", **PROMOTE_V2)}"'.encode() in version_page.content
    typo = admin_client.post(
        url("request_promotion", model_name=CLAIM_FRAUD, version=99),
        {"alias": "production"},
        follow=True,
    )
    assert f"no version 99 of a model named &#x27;{CLAIM_FRAUD}&#x27;".encode() in typo.content
    request_v2(admin_client, alias="canary", canary_share=30)
    baseline = admin_client.post(
        url("request_promotion", model_name=CLAIM_FRAUD, version=1),
        {"alias": "canary", "canary_share": "10"},
    )
    assert baseline.status_code == 302
    v2, v1 = PromotionRequest.objects.filter(workspace=workspace).order_by("created_at")
    # The requester's page shows both pending without buttons; the second admin's with.
    own = admin_client.get(url("list")).content.decode()
    assert own.count("a different admin must approve or reject it") == 2
    assert "Approve</button>" not in own
    other = second.get(url("list")).content.decode()
    assert other.count("Approve</button>") == 2 and "30 % of production calls" in other

    denied = second.post(url("approve_promotion", promotion_id=v1.id), follow=True)
    assert b"denied by the model_promotion policy" in denied.content
    assert b"metric accuracy = 0.73 is below 0.8" in denied.content
    assert "canary" not in mlflow.get_registered_model(CLAIM_FRAUD).aliases

    try:
        allowed = second.post(url("approve_promotion", promotion_id=v2.id), follow=True)
        assert b"Approved: claim-fraud version 2 \xe2\x86\x92 canary is live." in allowed.content
        model = mlflow.get_registered_model(CLAIM_FRAUD)
        assert model.aliases["canary"] == "2" and model.tags["flowgate.canary_share"] == "30"
        assert b"canary \xe2\x86\x92 v2 \xc2\xb7 30 % of production calls" in allowed.content
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
    assert {
        "model.promotion_requested",
        "model.promotion_approved",
        "model.promoted",
        "model.promotion_denied",
        "gate.evaluated",
    } <= actions
