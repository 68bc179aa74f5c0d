"""Four-eyes promotion in the browser: one admin requests on the Models page, another approves,
the alias moves in the real MLflow and the real model service answers with the new version."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from apps.accounts.models import Role
from apps.mlmodels.training import CLAIM_FRAUD
from tests.e2e.conftest import log_in, serve_studio
from tests.factories import MembershipFactory, UserFactory
from tests.mlmodels.helpers import CLAIM, mlflow_client

pytestmark = pytest.mark.slow


@pytest.fixture
def models_studio_url(test_database_url, model_stack, trained_models):
    """The studio pointed at the test MLflow and model service (the package's shared
    studio_url does not know them)."""
    with serve_studio(
        test_database_url,
        MLFLOW_TRACKING_URI=model_stack.mlflow.url,
        MODEL_SERVICE_URL=model_stack.service.url,
    ) as url:
        yield url


@pytest.fixture
def production_on_v1(model_stack):
    def reset() -> None:
        mlflow_client(model_stack).set_registered_model_alias(CLAIM_FRAUD, "production", "1")
        httpx.post(f"{model_stack.service.url}/refresh", json={}, timeout=10).raise_for_status()

    reset()
    yield
    reset()


def served_version(model_stack) -> str:
    body = {"model": CLAIM_FRAUD, "alias": "production", "inputs": [CLAIM]}
    return httpx.post(f"{model_stack.service.url}/predict", json=body, timeout=30).json()["version"]


def test_one_admin_requests_another_approves_and_the_service_follows(
    open_page, models_studio_url, workspace, admin_user, model_stack, production_on_v1
):
    MembershipFactory(user=UserFactory(username="otto"), workspace=workspace, role=Role.ADMIN)
    requester = open_page(models_studio_url)
    log_in(requester, "ada")
    requester.goto(f"/w/acme/models/{CLAIM_FRAUD}/")
    v2 = requester.get_by_role("row").filter(has_text="v2").filter(has=requester.locator("form"))
    v2.get_by_label("Alias for v2").select_option("production")
    v2.get_by_label("Note for v2").fill("v2 passes the thresholds")
    v2.get_by_role("button", name="Request promotion").click()
    expect(requester.get_by_text("another admin must approve it")).to_be_visible()
    pending = requester.locator("#promotion-requests [data-request]")
    expect(pending).to_have_count(1)
    expect(pending).to_contain_text("a different admin must approve or reject it")
    expect(pending.get_by_role("button", name="Approve")).to_have_count(0)

    approver = open_page(models_studio_url)
    log_in(approver, "otto")
    approver.goto("/w/acme/models/")
    waiting = approver.locator("#pending-promotions [data-request]")
    expect(waiting).to_have_count(1)
    expect(waiting).to_contain_text("v2 passes the thresholds")
    shot = os.environ.get("FLOWGATE_SCREENSHOT_DIR")
    if shot:  # for a person to look at the page: FLOWGATE_SCREENSHOT_DIR=/tmp pytest ...
        approver.screenshot(path=str(Path(shot) / "models-pending.png"), full_page=True)
    waiting.get_by_label("Decision note for claim-fraud v2").fill("agreed")
    waiting.get_by_role("button", name="Approve").click()

    expect(
        approver.get_by_text("Approved: claim-fraud version 2 → production is live.")
    ).to_be_visible()
    expect(approver.locator("#pending-promotions")).to_contain_text(
        "No promotion is waiting for approval"
    )
    expect(approver.get_by_text("production → v2").first).to_be_visible()
    assert served_version(model_stack) == "2"

    requester.goto(f"/w/acme/models/{CLAIM_FRAUD}/")
    history = requester.locator("#promotion-requests [data-request]")
    expect(history).to_contain_text("Approved by Otto: agreed")
    if shot:
        requester.screenshot(path=str(Path(shot) / "models-detail.png"), full_page=True)
