"""Four-eyes promotion against a real MLflow and model service: one admin requests, another
approves, the model_promotion gate decides, the alias moves and the service follows at once."""

from __future__ import annotations

import threading

import httpx
import pytest
from django.db import connection

from apps.accounts.models import Role
from apps.audit.models import AuditEvent
from apps.mlmodels import registry
from apps.mlmodels.models import PromotionRequest, PromotionStatus
from apps.mlmodels.services import (
    PromotionError,
    model_rollback,
    promotion_approve,
    promotion_reject,
    promotion_request_create,
)
from apps.mlmodels.training import (
    CANARY_SHARE_TAG,
    CLAIM_FRAUD,
    OWNER_TAG,
    SHA256_TAG,
    THRESHOLDS_TAG,
)
from tests.factories import MembershipFactory, UserFactory
from tests.mlmodels.helpers import CLAIM, SHIPPED_THRESHOLDS, mlflow_client

pytestmark = [pytest.mark.slow]


def served_version(model_stack, alias: str = "production") -> str:
    body = {"model": CLAIM_FRAUD, "alias": alias, "inputs": [CLAIM]}
    return httpx.post(f"{model_stack.service.url}/predict", json=body, timeout=30).json()["version"]


def reset_registry(model_stack) -> None:
    client = mlflow_client(model_stack)
    client.set_registered_model_alias(CLAIM_FRAUD, "production", "1")
    if "canary" in client.get_registered_model(CLAIM_FRAUD).aliases:
        client.delete_registered_model_alias(CLAIM_FRAUD, "canary")
    for tag in (
        "flowgate.previous.production",
        "flowgate.previous.canary",
        CANARY_SHARE_TAG,
        OWNER_TAG,
    ):
        client.set_registered_model_tag(CLAIM_FRAUD, tag, "")
    client.set_registered_model_tag(CLAIM_FRAUD, THRESHOLDS_TAG, SHIPPED_THRESHOLDS)
    httpx.post(f"{model_stack.service.url}/refresh", json={}, timeout=10).raise_for_status()


@pytest.fixture
def production_on_v1(model_stack, registry_settings):
    reset_registry(model_stack)
    yield
    reset_registry(model_stack)


@pytest.fixture
def second_admin(workspace):
    return MembershipFactory(
        user=UserFactory(username="otto"), workspace=workspace, role=Role.ADMIN
    ).user


def request_v2(workspace, requester, alias: str = "production", **extra):
    return promotion_request_create(
        workspace=workspace,
        actor=requester,
        name=CLAIM_FRAUD,
        version="2",
        alias=alias,
        note="v2 passes the thresholds",
        **extra,
    )


@pytest.mark.django_db
def test_a_request_approved_by_another_admin_moves_the_alias_and_the_next_call_follows(
    workspace, admin_user, second_admin, production_on_v1, model_stack
):
    promotion = request_v2(workspace, admin_user)
    assert promotion.status == PromotionStatus.PENDING
    assert served_version(model_stack) == "1"  # a request alone changes nothing

    approved = promotion_approve(
        workspace=workspace, promotion_id=promotion.id, actor=second_admin, note="looks good"
    )

    assert approved.status == PromotionStatus.APPROVED, approved.reasons
    assert approved.decided_by == second_admin and approved.previous_version == "1"
    assert registry.get_model(CLAIM_FRAUD).aliases["production"] == "2"
    assert served_version(model_stack) == "2"  # no restart: the next call gets the new version
    actions = [
        action
        for action in AuditEvent.objects.order_by("appended").values_list("action", flat=True)
        if action.startswith(("model.", "gate."))
    ]
    assert actions == [
        "model.promotion_requested",
        "gate.evaluated",
        "model.promoted",
        "model.promotion_approved",
    ]
    promoted = AuditEvent.objects.get(action="model.promoted")
    assert promoted.actor_id == second_admin.id
    assert promoted.data["requested_by"] == "ada" and promoted.data["approved_by"] == "otto"
    assert promoted.data["reasons"] == ["all checks passed"]


@pytest.mark.django_db
def test_the_requester_cannot_approve_their_own_request(
    workspace, admin_user, production_on_v1, model_stack
):
    promotion = request_v2(workspace, admin_user)
    with pytest.raises(PromotionError) as refused:
        promotion_approve(workspace=workspace, promotion_id=promotion.id, actor=admin_user)
    assert refused.value.status == 403
    assert "a different admin must approve" in refused.value.message
    promotion.refresh_from_db()
    assert promotion.status == PromotionStatus.PENDING
    assert registry.get_model(CLAIM_FRAUD).aliases["production"] == "1"


@pytest.mark.django_db
def test_a_rejected_request_changes_nothing(
    workspace, admin_user, second_admin, production_on_v1, model_stack
):
    promotion = request_v2(workspace, admin_user, alias="canary", canary_share=40)
    rejected = promotion_reject(
        workspace=workspace, promotion_id=promotion.id, actor=second_admin, note="not yet"
    )
    assert rejected.status == PromotionStatus.REJECTED and rejected.decision_note == "not yet"
    model = registry.get_model(CLAIM_FRAUD)
    assert model.aliases == {"production": "1"} and model.canary_share == 0
    assert not AuditEvent.objects.filter(action="gate.evaluated").exists()
    assert AuditEvent.objects.filter(action="model.promotion_rejected").count() == 1
    # Decided once: approving it now is a conflict.
    with pytest.raises(PromotionError) as conflict:
        promotion_approve(workspace=workspace, promotion_id=promotion.id, actor=second_admin)
    assert conflict.value.status == 409


@pytest.mark.django_db
def test_missing_metrics_and_a_checksum_mismatch_are_denied_at_approval_with_reasons(
    workspace, admin_user, second_admin, production_on_v1, model_stack
):
    client = mlflow_client(model_stack)
    client.set_registered_model_tag(
        CLAIM_FRAUD, THRESHOLDS_TAG, '{"accuracy": 0.8, "roc_auc": 0.9}'
    )
    recorded = client.get_model_version(CLAIM_FRAUD, "2").tags[SHA256_TAG]
    client.set_model_version_tag(CLAIM_FRAUD, "2", SHA256_TAG, "0" * 64)
    try:
        promotion = request_v2(workspace, admin_user)
        denied = promotion_approve(
            workspace=workspace, promotion_id=promotion.id, actor=second_admin
        )
    finally:
        client.set_model_version_tag(CLAIM_FRAUD, "2", SHA256_TAG, recorded)
    assert denied.status == PromotionStatus.DENIED
    assert denied.reasons == [
        "metric roc_auc is missing",
        "the artifact checksum does not match the registered one",
    ]
    assert registry.get_model(CLAIM_FRAUD).aliases["production"] == "1"
    assert served_version(model_stack) == "1"
    event = AuditEvent.objects.get(action="model.promotion_denied")
    assert event.data["reasons"] == denied.reasons and event.data["allow"] is False


@pytest.mark.django_db
@pytest.mark.parametrize("name,version", [(CLAIM_FRAUD, "99"), ("no-such-model", "1")])
def test_a_request_for_what_the_registry_lacks_is_refused_at_once(
    workspace, admin_user, production_on_v1, name, version
):
    with pytest.raises(PromotionError) as refused:
        promotion_request_create(
            workspace=workspace, actor=admin_user, name=name, version=version, alias="production"
        )
    assert refused.value.status == 404
    assert f"no version {version} of a model named {name!r}" in refused.value.message
    assert not PromotionRequest.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("name,version", [(CLAIM_FRAUD, "99"), ("no-such-model", "1")])
def test_a_version_gone_from_the_registry_by_approval_is_denied_not_an_error(
    workspace, admin_user, second_admin, production_on_v1, name, version
):
    # Requested while it existed (or while the registry was down), deleted since.
    promotion = PromotionRequest.objects.create(
        workspace=workspace,
        model_name=name,
        version=version,
        alias="production",
        requested_by=admin_user,
    )
    denied = promotion_approve(workspace=workspace, promotion_id=promotion.id, actor=second_admin)
    assert denied.status == PromotionStatus.DENIED
    assert denied.reasons == [f"version {version} of {name} is not in the registry"]


@pytest.mark.django_db
def test_one_admin_may_roll_back_to_the_previous_version_when_it_passes_the_checks(
    workspace, admin_user, second_admin, production_on_v1, model_stack
):
    promotion = request_v2(workspace, admin_user)
    promotion_approve(workspace=workspace, promotion_id=promotion.id, actor=second_admin)
    assert served_version(model_stack) == "2"

    # Version 1 is below the thresholds: even a rollback is denied...
    denied = model_rollback(workspace=workspace, actor=admin_user, name=CLAIM_FRAUD)
    assert not denied.allowed and denied.version == "1"
    assert "metric accuracy" in denied.reasons[0]
    assert "the promotion has no approver" not in denied.reasons  # waived for a rollback
    assert served_version(model_stack) == "2"
    # ...until the model's thresholds allow it; then one admin suffices.
    mlflow_client(model_stack).set_registered_model_tag(
        CLAIM_FRAUD, THRESHOLDS_TAG, '{"accuracy": 0.5}'
    )
    rolled = model_rollback(workspace=workspace, actor=admin_user, name=CLAIM_FRAUD)
    assert rolled.allowed, rolled.reasons
    assert served_version(model_stack) == "1"
    event = AuditEvent.objects.get(action="model.rolled_back")
    assert event.data["change"] == "rollback" and event.actor_id == admin_user.id


@pytest.mark.django_db(transaction=True)
def test_two_approvals_at_once_act_once(workspace, admin_user, second_admin, production_on_v1):
    third_admin = MembershipFactory(
        user=UserFactory(username="tess"), workspace=workspace, role=Role.ADMIN
    ).user
    promotion = request_v2(workspace, admin_user)
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def approve(actor) -> None:
        start.wait()
        try:
            promotion_approve(workspace=workspace, promotion_id=promotion.id, actor=actor)
            outcomes.append("approved")
        except PromotionError as error:
            outcomes.append(f"{error.status}: {error.message}")
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(a,)) for a in (second_admin, third_admin)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(outcomes) == ["409: This request was already approved.", "approved"]
    assert AuditEvent.objects.filter(action="model.promoted").count() == 1


@pytest.mark.django_db
def test_a_model_another_workspace_manages_cannot_be_moved_from_this_one(
    workspace, admin_user, second_admin, production_on_v1, model_stack, admin_client
):
    """The registry is shared by every workspace: its owner's admins alone move aliases."""
    pending = request_v2(workspace, admin_user)  # requested before the model had an owner
    mlflow_client(model_stack).set_registered_model_tag(CLAIM_FRAUD, OWNER_TAG, "elsewhere")

    with pytest.raises(PromotionError) as requested:
        request_v2(workspace, admin_user)
    with pytest.raises(PromotionError) as approved:
        promotion_approve(workspace=workspace, promotion_id=pending.id, actor=second_admin)
    with pytest.raises(PromotionError) as rolled_back:
        model_rollback(workspace=workspace, actor=admin_user, name=CLAIM_FRAUD)
    for refused in (requested, approved, rolled_back):
        assert refused.value.status == 403
        assert "managed by the workspace 'elsewhere'" in refused.value.message
    assert registry.get_model(CLAIM_FRAUD).aliases["production"] == "1"
    pending.refresh_from_db()
    assert pending.status == PromotionStatus.PENDING

    page = admin_client.get(f"/w/acme/models/{CLAIM_FRAUD}/")
    assert b"Managed by the workspace <strong>elsewhere</strong>" in page.content
    assert b"Request promotion" not in page.content and b"Roll back" not in page.content
