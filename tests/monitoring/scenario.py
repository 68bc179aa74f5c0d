"""The worse-canary scenario, shared by the canary test and the browser test: production on
the properly trained version, a canary (50 %) on the version trained on shuffled labels,
160 generated claims through the model block with their true labels posted, alerts to a
real SMTP server on loopback, then the scheduled check."""

from __future__ import annotations

from collections import Counter
from typing import Any

from apps.connectors.services import connection_create
from apps.mlmodels import registry
from apps.mlmodels.blocks import ModelServiceClient
from apps.mlmodels.training import CANARY_SHARE_TAG
from apps.monitoring.checks import monitoring_check
from apps.monitoring.services import label_record, monitor_save
from tests.mlmodels.helpers import mlflow_client

from .conftest import MONITORED, predict, stream


def canary_beside_production(model_stack, production: str, canary: str) -> None:
    """Production and canary (50 % of production's calls) on these versions."""
    client = mlflow_client(model_stack)
    client.set_registered_model_alias(MONITORED, "production", production)
    client.set_registered_model_alias(MONITORED, "canary", canary)
    client.set_registered_model_tag(MONITORED, CANARY_SHARE_TAG, "50")
    ModelServiceClient("w", base_url=model_stack.service.url).refresh()


def canary_removed(model_stack) -> None:
    client = mlflow_client(model_stack)
    if "canary" in registry.get_model(MONITORED, with_runs=False).aliases:
        client.delete_registered_model_alias(MONITORED, "canary")
    client.set_registered_model_tag(MONITORED, CANARY_SHARE_TAG, "0")


def mail_channel(workspace, actor, smtp_port: int = 2525) -> None:
    """The workspace's SMTP connection ``ops-mail`` (to an SMTP server on loopback)."""
    connection_create(
        workspace=workspace,
        actor=actor,
        name="ops-mail",
        type="smtp",
        config={
            "host": "127.0.0.1",
            "port": smtp_port,
            "security": "none",
            "from_address": "flowgate@example.com",
        },
        secrets={},
    )


def alerts_by_email(workspace, actor, smtp_port: int) -> None:
    mail_channel(workspace, actor, smtp_port)
    monitor_save(
        workspace=workspace,
        actor=actor,
        model_name=MONITORED,
        min_window_samples=20,
        alert_connections=["ops-mail"],
        alert_recipients=["ops@example.com"],
    )


def labelled_traffic(model_stack, workspace, rows: int = 160) -> Counter:
    """Generated claims through the block, each true label posted afterwards; returns how
    many calls each version served."""
    records, labels = stream(rows, seed=404)
    served: Counter = Counter()
    for record, label in zip(records, labels, strict=True):
        run_id, result = predict(model_stack.service.url, workspace.id, record)
        served[result.output["version"]] += 1
        label_record(workspace_id=workspace.id, label=label, source="api", run_id=run_id)
    return served


def scheduled_check(workspace) -> dict[str, Any]:
    return monitoring_check(workspace_id=workspace.id)
