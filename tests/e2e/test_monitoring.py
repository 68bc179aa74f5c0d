"""Model monitoring in the browser: after the worse-canary scenario (real MLflow, BentoML
and SMTP on loopback) the model page shows the rollback alert, drift and accuracy with
their charts, and the dashboard shows the alert, the automation figures and lets an admin
acknowledge it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from apps.audit.models import AuditEvent
from tests.e2e.conftest import log_in, serve_studio
from tests.monitoring.conftest import MONITORED, monitored_versions  # noqa: F401 (fixture)
from tests.monitoring.scenario import (
    alerts_by_email,
    canary_beside_production,
    canary_removed,
    labelled_traffic,
    scheduled_check,
)
from tests.support.smtp import smtp_server

pytestmark = pytest.mark.slow


@pytest.fixture
def monitoring_studio_url(test_database_url, model_stack):
    with serve_studio(
        test_database_url,
        MLFLOW_TRACKING_URI=model_stack.mlflow.url,
        MODEL_SERVICE_URL=model_stack.service.url,
    ) as url:
        yield url


def screenshot(page, name: str) -> None:
    folder = os.environ.get("FLOWGATE_SCREENSHOT_DIR")
    if folder:  # for a person to look at the page: FLOWGATE_SCREENSHOT_DIR=/tmp pytest ...
        page.screenshot(path=str(Path(folder) / name), full_page=True)


def test_models_and_dashboard_pages_show_the_rolled_back_canary(
    open_page,
    monitoring_studio_url,
    workspace,
    admin_user,
    model_stack,
    registry_settings,
    monitored_versions,  # noqa: F811
):
    strong, weak = monitored_versions
    canary_beside_production(model_stack, strong.version, weak.version)
    try:
        with smtp_server() as (controller, mailbox):
            alerts_by_email(workspace, admin_user, controller.port)
            labelled_traffic(model_stack, workspace)
            scheduled_check(workspace)
        assert any("rolled back" in message["Subject"] for _, _, message in mailbox.messages)
    finally:
        canary_removed(model_stack)

    page = open_page(monitoring_studio_url)
    log_in(page, admin_user.username)
    page.goto(f"/w/{workspace.slug}/models/{MONITORED}/")
    panel = page.locator("#model-monitoring-panel")
    expect(panel).to_contain_text(f"canary v{weak.version} rolled back")
    expect(panel.locator("[data-drift-table]")).to_be_visible()
    expect(panel.locator("[data-performance-table]")).to_contain_text(f"v{weak.version}")
    expect(panel.locator("canvas[data-drawn]")).to_have_count(2)
    screenshot(page, "monitoring-model.png")

    page.goto(f"/w/{workspace.slug}/dashboard/")
    section = page.locator("#dashboard-monitoring-panel")
    row = section.locator("[data-alert-kind=canary_rollback]")
    expect(row).to_contain_text("rolled back")
    expect(row).to_contain_text("ops-mail ✓")
    screenshot(page, "monitoring-dashboard.png")
    row.get_by_role("button", name="Acknowledge").click()
    acknowledged = section.locator("[data-alert-kind=canary_rollback]")
    expect(acknowledged).to_contain_text(str(admin_user))
    expect(acknowledged.get_by_role("button", name="Acknowledge")).to_have_count(0)
    assert AuditEvent.objects.filter(action="monitoring.alert_acknowledged").exists()
    screenshot(page, "monitoring-dashboard-acknowledged.png")
