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
from tests.e2e.test_accessibility import axe_findings
from tests.monitoring.conftest import (  # noqa: F401 (fixture)
    MONITORED,
    monitored_versions,
    predict,
    stream,
)
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


def reviewed_flow_traffic(workspace, builder_user, reviewer_user, admin_user) -> int:
    """Claims through a published scoring flow on the real engine (low-confidence ones go
    to a reviewer, who calls each of them fraud); returns how many were reviewed."""
    from apps.inbox.models import ReviewTask
    from apps.inbox.services import task_decide
    from apps.monitoring.services import monitor_save
    from tests.inbox.helpers import membership
    from tests.monitoring.conftest import scoring_flow, start_claims
    from tests.runs.helpers import published_flow

    monitor_save(
        workspace=workspace,
        actor=admin_user,
        model_name=MONITORED,
        review_labels={"approve": "legit", "reject": "fraud"},
    )
    flow = published_flow(workspace, builder_user, scoring_flow(), name="Claim scoring")
    start_claims(flow, stream(12, seed=9)[0], prefix="F", actor=builder_user)
    tasks = list(ReviewTask.objects.filter(workspace=workspace))
    for task in tasks:
        task_decide(
            task=task,
            actor=reviewer_user,
            membership=membership(reviewer_user, workspace),
            decision="reject",
            comment="looks staged",
        )
    return len(tasks)


def test_models_and_dashboard_pages_show_the_rolled_back_canary(
    open_page,
    monitoring_studio_url,
    workspace,
    admin_user,
    builder_user,
    reviewer_user,
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
            # After the rollback: flows run on production; reviewers decide some cases,
            # and the next check takes their decisions as labels.
            reviewed = reviewed_flow_traffic(workspace, builder_user, reviewer_user, admin_user)
            assert 0 < reviewed < 12
            # Then the claims shift (amounts triple, all through the web): drift.
            for record in stream(80, seed=808, shift_from=0)[0]:
                predict(model_stack.service.url, workspace.id, record)
            second = scheduled_check(workspace)
            assert second["review_labels"] == reviewed
            assert {f"v{strong.version} amount", f"v{strong.version} channel"} <= set(
                second[MONITORED]["drift"]
            )
        assert any("rolled back" in message["Subject"] for _, _, message in mailbox.messages)
    finally:
        canary_removed(model_stack)

    page = open_page(monitoring_studio_url)
    log_in(page, admin_user.username)
    page.goto(f"/w/{workspace.slug}/models/{MONITORED}/")
    panel = page.locator("#model-monitoring-panel")
    expect(panel).to_contain_text(f"canary v{weak.version} rolled back")
    expect(panel.locator("[data-alert-kind=drift]")).to_contain_text(
        f"drift in v{strong.version} amount"
    )
    expect(panel.locator("[data-drift-table] tr.is-drifted").first).to_contain_text("drifted")
    expect(panel.locator("[data-drift-table]")).to_be_visible()
    expect(panel.locator("[data-performance-table]")).to_contain_text(f"v{weak.version}")
    for chart in ("drift-chart-data", "accuracy-chart-data"):
        expect(panel.locator(f"canvas[data-monitoring-chart={chart}][data-drawn]")).to_have_count(1)
    shifted = panel.locator(f"[data-distribution='v{strong.version} amount']")
    expect(shifted).to_contain_text("samples")
    expect(shifted.locator("canvas[data-drawn]")).to_have_count(1)
    screenshot(page, "monitoring-model.png")
    assert axe_findings(page) == []  # with alerts, drifted rows and every chart drawn

    page.goto(f"/w/{workspace.slug}/dashboard/")
    section = page.locator("#dashboard-monitoring-panel")
    row = section.locator("[data-alert-kind=canary_rollback]")
    expect(row).to_contain_text("rolled back")
    expect(row).to_contain_text("ops-mail ✓")
    expect(section.locator("[data-alert-kind=drift]")).to_contain_text("drift in")
    automation = section.locator("[data-automation-table]")
    expect(automation).to_contain_text("Claim scoring")
    expect(automation).to_contain_text(f"{round((1 - reviewed / 12) * 100)} %")
    expect(automation).to_contain_text(f"% of {reviewed}")
    screenshot(page, "monitoring-dashboard.png")
    assert axe_findings(page) == []
    row.get_by_role("button", name="Acknowledge").click()
    acknowledged = section.locator("[data-alert-kind=canary_rollback]")
    expect(acknowledged).to_contain_text(str(admin_user))
    expect(acknowledged.get_by_role("button", name="Acknowledge")).to_have_count(0)
    assert AuditEvent.objects.filter(action="monitoring.alert_acknowledged").exists()
    screenshot(page, "monitoring-dashboard-acknowledged.png")


def test_an_admin_sets_monitoring_in_the_model_pages_form(
    open_page,
    monitoring_studio_url,
    workspace,
    admin_user,
    model_stack,
    registry_settings,
    monitored_versions,  # noqa: F811
):
    from apps.monitoring.models import ModelMonitor
    from tests.monitoring.scenario import mail_channel

    mail_channel(workspace, admin_user)
    page = open_page(monitoring_studio_url)
    log_in(page, admin_user.username)
    page.goto(f"/w/{workspace.slug}/models/{MONITORED}/")
    panel = page.locator("#model-monitoring-panel")
    panel.get_by_text("Monitoring settings", exact=True).click()
    form = panel.get_by_role("form", name=f"Monitoring settings of {MONITORED}")
    form.get_by_label("Sampling rate").fill("2")
    form.get_by_label("Email recipients").fill("ops@example.com")
    form.get_by_role("button", name="Save monitoring settings").click()
    refused = page.locator("#model-monitoring-panel")
    expect(refused.get_by_role("alert").first).to_contain_text("Nothing was saved")
    expect(refused.get_by_label("Sampling rate")).to_have_attribute("aria-invalid", "true")
    expect(refused).to_contain_text("less than or equal to 1")
    assert axe_findings(page) == []  # the form showing its errors
    screenshot(page, "monitoring-settings-refused.png")
    assert not ModelMonitor.objects.filter(workspace=workspace).exists()

    form = refused.get_by_role("form", name=f"Monitoring settings of {MONITORED}")
    form.get_by_label("Sampling rate").fill("0.25")
    form.get_by_label("Alert when labelled accuracy is below").fill("0.8")
    form.get_by_label("ops-mail").check()
    form.get_by_role("button", name="Save monitoring settings").click()
    saved = page.locator("#model-monitoring-panel")
    expect(saved.get_by_role("status")).to_contain_text("Monitoring settings saved")
    expect(saved.locator("[data-monitor-summary]")).to_contain_text("Sampling 0.25")
    expect(saved.locator("[data-monitor-summary]")).to_contain_text("alerts to ops-mail")
    screenshot(page, "monitoring-settings-saved.png")
    monitor = ModelMonitor.objects.get(workspace=workspace, model_name=MONITORED)
    assert monitor.sample_rate == 0.25 and monitor.accuracy_min == 0.8
    assert monitor.alert_connections == ["ops-mail"]
    assert monitor.alert_recipients == ["ops@example.com"]
    changed = AuditEvent.objects.get(action="monitoring.settings_changed")
    assert changed.actor_id == admin_user.id and changed.data["after"]["sample_rate"] == 0.25
