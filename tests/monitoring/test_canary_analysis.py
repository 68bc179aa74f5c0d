"""A canary that is worse than production (a version trained on shuffled labels) is rolled
back automatically by the scheduled check, audited, and the alert reaches a real SMTP
server on loopback, once."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.mlmodels import registry
from apps.monitoring.models import MonitoringAlert
from tests.support.smtp import smtp_server

from .conftest import MONITORED
from .scenario import (
    alerts_by_email,
    canary_beside_production,
    canary_removed,
    labelled_traffic,
    scheduled_check,
)

pytestmark = [pytest.mark.slow]


@pytest.fixture
def weak_canary(db, model_stack, registry_settings, monitored_versions):
    canary_beside_production(
        model_stack, monitored_versions[0].version, monitored_versions[1].version
    )
    yield monitored_versions
    canary_removed(model_stack)


def test_a_worse_canary_is_rolled_back_and_the_alert_is_emailed(
    weak_canary, workspace, admin_user, model_stack
):
    strong, weak = weak_canary
    with smtp_server() as (controller, mailbox):
        alerts_by_email(workspace, admin_user, controller.port)
        served = labelled_traffic(model_stack, workspace)
        assert served[weak.version] >= 40 and served[strong.version] >= 40

        report = scheduled_check(workspace)
        assert report[MONITORED]["canary"]["action"] == "rollback", report[MONITORED]["canary"]
        # A second check finds no canary and sends nothing more (deduplicated).
        assert scheduled_check(workspace)[MONITORED]["canary"] is None

    model = registry.get_model(MONITORED, with_runs=False)
    assert "canary" not in model.aliases and model.aliases["production"] == strong.version
    assert model.canary_share == 0
    rollback = AuditEvent.objects.get(workspace_id=workspace.id, action="model.rolled_back")
    assert rollback.data["alias"] == "canary" and "canary accuracy" in rollback.data["reason"]
    assert rollback.actor_label == "monitoring"
    analysis = AuditEvent.objects.filter(action="gate.evaluated", object_id="canary_analysis")
    assert analysis.first().summary == "canary_analysis: rollback"
    alert = MonitoringAlert.objects.get(workspace=workspace, kind="canary_rollback")
    assert alert.deliveries and alert.deliveries[0]["ok"], alert.deliveries
    assert AuditEvent.objects.filter(action="monitoring.alert_raised", object_id=alert.key).exists()
    subjects = [message["Subject"] for _, _, message in mailbox.messages]
    canary_mails = [s for s in subjects if "canary" in s]
    assert len(canary_mails) == 1, subjects
    assert f"canary v{weak.version} rolled back" in canary_mails[0]
    assert all(recipients == ["ops@example.com"] for _, recipients, _ in mailbox.messages)


def test_a_canary_as_good_as_production_is_left_for_a_four_eyes_promotion(
    db, model_stack, registry_settings, monitored_versions, workspace, admin_user
):
    from apps.mlmodels.models import PromotionRequest

    strong, weak = monitored_versions
    canary_beside_production(model_stack, weak.version, strong.version)  # the weak one serves
    try:
        with smtp_server() as (controller, mailbox):
            alerts_by_email(workspace, admin_user, controller.port)
            labelled_traffic(model_stack, workspace)
            decided = scheduled_check(workspace)[MONITORED]["canary"]
        model = registry.get_model(MONITORED, with_runs=False)
    finally:
        canary_removed(model_stack)
    assert decided["action"] == "promote_request", decided
    assert model.aliases == {"production": weak.version, "canary": strong.version}
    assert not PromotionRequest.objects.exists()  # a person asks; another approves
    ready = MonitoringAlert.objects.get(workspace=workspace, kind="canary_ready")
    assert f"canary v{strong.version} is ready" in ready.summary
    assert any("is ready" in message["Subject"] for _, _, message in mailbox.messages)


def test_a_canary_that_refuses_the_flows_calls_is_rolled_back_for_its_error_rate(
    db, model_stack, registry_settings, monitored_versions, narrow_version, workspace
):
    from apps.blocks.base import BlockError

    from .conftest import predict, stream

    strong, _ = monitored_versions
    canary_beside_production(model_stack, strong.version, narrow_version)
    try:
        refused = 0
        for record in stream(80, seed=505)[0]:
            try:
                predict(model_stack.service.url, workspace.id, record)
            except BlockError as error:
                assert "unknown field 'channel'" in error.message
                refused += 1
        decided = scheduled_check(workspace)[MONITORED]["canary"]
        model = registry.get_model(MONITORED, with_runs=False)
    finally:
        canary_removed(model_stack)
    assert refused >= 20
    assert decided["input"]["canary"]["error_rate"] == 1.0
    assert decided["action"] == "rollback"
    assert "canary error rate 1 is above 0.05" in decided["reasons"]
    assert "canary" not in model.aliases


def test_a_crashing_canary_fails_only_its_own_calls_and_is_rolled_back_for_its_errors(
    db,
    model_stack,
    registry_settings,
    monitored_versions,
    crashing_version,
    workspace,
    admin_user,
):
    """The model crashes inside the service (not a refused input): in one batch the
    production row is still answered and the crashed row names its version; every such
    call counts in that version's error rate, sampled or not, and the check rolls it back."""
    import httpx

    from apps.blocks.base import BlockError
    from apps.monitoring.services import monitor_save

    from .conftest import predict, stream

    strong, _ = monitored_versions
    records, _ = stream(80, seed=606)
    rows = [
        {"model": MONITORED, "version": version, "inputs": records[0], "route_key": "r"}
        for version in (strong.version, crashing_version)
    ]
    answered, crashed = httpx.post(
        f"{model_stack.service.url}/predict_rows", json={"rows": rows}, timeout=60
    ).json()
    assert answered["version"] == strong.version and answered["label"] in {"fraud", "legit"}
    assert crashed["status"] == 500 and crashed["version"] == crashing_version
    assert "ValueError" in crashed["error"]

    # Few steps are sampled; errors are counted on every step all the same.
    monitor_save(workspace=workspace, actor=admin_user, model_name=MONITORED, sample_rate=0.1)
    canary_beside_production(model_stack, strong.version, crashing_version)
    try:
        crashes = 0
        for record in records:
            try:
                predict(model_stack.service.url, workspace.id, record)
            except BlockError as error:
                assert error.retryable and f"version {crashing_version}" in error.message
                crashes += 1
        decided = scheduled_check(workspace)[MONITORED]["canary"]
        model = registry.get_model(MONITORED, with_runs=False)
    finally:
        canary_removed(model_stack)
    assert crashes >= 20
    canary = decided["input"]["canary"]
    assert canary["version"] == crashing_version and canary["samples"] == crashes
    assert canary["error_rate"] == 1.0 and decided["input"]["production"]["error_rate"] == 0
    assert decided["action"] == "rollback"
    assert "canary error rate 1 is above 0.05" in decided["reasons"]
    assert "canary" not in model.aliases and model.aliases["production"] == strong.version
