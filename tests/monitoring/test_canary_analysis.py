"""A canary that is worse than production (a version trained on shuffled labels) is rolled
back automatically by the scheduled check, audited, and the alert reaches a real SMTP
server on loopback, once."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.connectors.services import connection_create
from apps.mlmodels import registry
from apps.mlmodels.training import CANARY_SHARE_TAG
from apps.monitoring.checks import monitoring_check
from apps.monitoring.models import MonitoringAlert
from apps.monitoring.services import label_record, monitor_save
from tests.mlmodels.helpers import mlflow_client
from tests.support.smtp import smtp_server

from .conftest import MONITORED, predict, stream

pytestmark = [pytest.mark.slow]


@pytest.fixture
def weak_canary(db, model_stack, registry_settings, monitored_versions):
    strong, weak = monitored_versions
    client = mlflow_client(model_stack)
    client.set_registered_model_alias(MONITORED, "production", strong.version)
    client.set_registered_model_alias(MONITORED, "canary", weak.version)
    client.set_registered_model_tag(MONITORED, CANARY_SHARE_TAG, "50")
    registry.get_model(MONITORED)  # noqa: B018 - fails early when MLflow is not answering
    from apps.mlmodels.blocks import ModelServiceClient

    ModelServiceClient("w", base_url=model_stack.service.url).refresh()
    yield strong, weak
    if "canary" in registry.get_model(MONITORED, with_runs=False).aliases:
        client.delete_registered_model_alias(MONITORED, "canary")
    client.set_registered_model_tag(MONITORED, CANARY_SHARE_TAG, "0")


def test_a_worse_canary_is_rolled_back_and_the_alert_is_emailed(
    weak_canary, workspace, admin_user, model_stack
):
    strong, weak = weak_canary
    with smtp_server() as (controller, mailbox):
        connection_create(
            workspace=workspace,
            actor=admin_user,
            name="ops-mail",
            type="smtp",
            config={
                "host": "127.0.0.1",
                "port": controller.port,
                "security": "none",
                "from_address": "flowgate@example.com",
            },
            secrets={},
        )
        monitor_save(
            workspace=workspace,
            actor=admin_user,
            model_name=MONITORED,
            min_window_samples=20,
            alert_connections=["ops-mail"],
            alert_recipients=["ops@example.com"],
        )
        records, labels = stream(160, seed=404)
        served = {}
        for record, label in zip(records, labels, strict=True):
            run_id, result = predict(model_stack.service.url, workspace.id, record)
            served[result.output["version"]] = served.get(result.output["version"], 0) + 1
            label_record(workspace_id=workspace.id, label=label, source="api", run_id=run_id)
        assert served.get(weak.version, 0) >= 40 and served.get(strong.version, 0) >= 40

        report = monitoring_check(workspace_id=workspace.id)
        assert report[MONITORED]["canary"]["action"] == "rollback", report[MONITORED]["canary"]
        # A second check finds no canary and sends nothing more (deduplicated).
        monitoring_check(workspace_id=workspace.id)

    model = registry.get_model(MONITORED, with_runs=False)
    assert "canary" not in model.aliases and model.aliases["production"] == strong.version
    assert model.canary_share == 0
    rollback = AuditEvent.objects.get(workspace_id=workspace.id, action="model.rolled_back")
    assert rollback.data["alias"] == "canary" and "canary accuracy" in rollback.data["reason"]
    alert = MonitoringAlert.objects.get(workspace=workspace, kind="canary_rollback")
    assert alert.deliveries and alert.deliveries[0]["ok"], alert.deliveries
    subjects = [message["Subject"] for _, _, message in mailbox.messages]
    canary_mails = [s for s in subjects if "canary" in s]
    assert len(canary_mails) == 1, subjects
    assert f"canary v{weak.version} rolled back" in canary_mails[0]
    assert mailbox.messages[0][1] == ["ops@example.com"]
