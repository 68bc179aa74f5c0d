"""The promotion requests REST API: request, list, read, approve, reject; who may do what;
errors in the standard body. Approval against a real registry is in test_promotion.py; here
the registry is down, which must be a 503 that changes nothing."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.accounts.models import Role
from apps.mlmodels.models import PromotionRequest
from apps.mlmodels.training import CLAIM_FRAUD
from tests.factories import MembershipFactory, UserFactory
from tests.support.processes import free_port

pytestmark = pytest.mark.django_db

BASE = "/api/w/acme/models/promotions/"
CANARY_V2 = {"model": CLAIM_FRAUD, "version": "2", "alias": "canary", "canary_share": 20}


@pytest.fixture
def registry_down(settings):
    settings.FLOWGATE = {
        **settings.FLOWGATE,
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}",
    }


@pytest.fixture
def second_admin_client(workspace) -> Client:
    user = MembershipFactory(
        user=UserFactory(username="otto"), workspace=workspace, role=Role.ADMIN
    )
    client = Client()
    client.force_login(user.user)
    return client


def test_an_admin_requests_and_everyone_with_models_access_sees_it_pending(
    admin_client, reviewer_client
):
    created = admin_client.post(
        BASE, {**CANARY_V2, "note": "a fifth"}, content_type="application/json"
    )
    assert created.status_code == 201
    body = created.json()
    assert body["status"] == "pending" and body["requested_by"] == "ada"
    assert (body["alias"], body["canary_share"], body["note"]) == ("canary", 20, "a fifth")
    pending = reviewer_client.get(BASE + "?status=pending").json()["results"]
    assert [item["id"] for item in pending] == [body["id"]]
    assert reviewer_client.get(f"{BASE}{body['id']}/").json()["model"] == CLAIM_FRAUD


def test_bad_requests_are_400s_naming_the_field(admin_client):
    for bad, field in (
        ({**CANARY_V2, "alias": "staging"}, "alias"),
        ({**CANARY_V2, "canary_share": 150}, "canary_share"),
        ({**CANARY_V2, "version": "v2"}, "version"),
        ({**CANARY_V2, "model": "../etc"}, "model"),
    ):
        response = admin_client.post(BASE, bad, content_type="application/json")
        assert response.status_code == 400
        assert field in response.json()["error"]["fields"]
    no_share = {key: value for key, value in CANARY_V2.items() if key != "canary_share"}
    response = admin_client.post(BASE, no_share, content_type="application/json")
    assert response.status_code == 400
    assert "traffic share" in response.json()["error"]["message"]
    assert not PromotionRequest.objects.exists()


def test_only_admins_request_and_decide(builder_client, reviewer_client, admin_client):
    for client in (builder_client, reviewer_client):
        assert client.post(BASE, CANARY_V2, content_type="application/json").status_code == 403
    promotion = admin_client.post(BASE, CANARY_V2, content_type="application/json").json()
    for client in (builder_client, reviewer_client):
        assert client.post(f"{BASE}{promotion['id']}/approve/").status_code == 403
        assert client.post(f"{BASE}{promotion['id']}/reject/").status_code == 403


def test_the_requester_cannot_decide_and_another_admin_rejects(admin_client, second_admin_client):
    promotion = admin_client.post(BASE, CANARY_V2, content_type="application/json").json()
    for verb in ("approve", "reject"):
        refused = admin_client.post(f"{BASE}{promotion['id']}/{verb}/")
        assert refused.status_code == 403
        assert "a different admin must approve or reject it" in refused.json()["error"]["message"]
    rejected = second_admin_client.post(
        f"{BASE}{promotion['id']}/reject/", {"note": "not now"}, content_type="application/json"
    )
    assert rejected.status_code == 200
    assert rejected.json()["status"] == "rejected" and rejected.json()["decided_by"] == "otto"
    again = second_admin_client.post(f"{BASE}{promotion['id']}/approve/")
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"


def test_approving_while_the_registry_is_down_is_a_503_and_the_request_stays_pending(
    admin_client, second_admin_client, registry_down
):
    promotion = admin_client.post(BASE, CANARY_V2, content_type="application/json").json()
    response = second_admin_client.post(f"{BASE}{promotion['id']}/approve/")
    assert response.status_code == 503
    assert "is not answering" in response.json()["error"]["message"]
    assert PromotionRequest.objects.get(pk=promotion["id"]).status == "pending"
