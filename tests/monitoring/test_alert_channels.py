"""Alerts through the workspace's channels: an outgoing-webhook connection gets a signed
event for the alert and for its recovery (a real HTTP receiver on loopback), and a channel
that fails is recorded on the alert without stopping the others."""

from __future__ import annotations

import json

from apps.connectors.services import connection_create, connection_delete
from apps.connectors.webhook.signing import verify
from apps.monitoring.alerts import alert_raise, alert_resolve
from apps.monitoring.services import monitor_save
from tests.support.http_server import CountingServer

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_webhook_gets_the_alert_and_the_recovery_signed_and_a_broken_channel_is_recorded(
    workspace, admin_user, settings
):
    settings.FLOWGATE = {**settings.FLOWGATE, "SSRF_ALLOWLIST": ["127.0.0.1"]}
    with CountingServer() as receiver:
        connection_create(
            workspace=workspace,
            actor=admin_user,
            name="ops-hook",
            type="webhook",
            config={"url": f"{receiver.url}/alerts"},
            secrets={"signing_secret": SECRET},
        )
        # A channel must exist when it is chosen; one deleted afterwards is a broken channel.
        gone = connection_create(
            workspace=workspace,
            actor=admin_user,
            name="missing-connection",
            type="webhook",
            config={"url": f"{receiver.url}/gone"},
            secrets={"signing_secret": SECRET},
        )
        monitor_save(
            workspace=workspace,
            actor=admin_user,
            model_name="claim-fraud",
            alert_connections=["ops-hook", "missing-connection"],
        )
        connection_delete(connection=gone, actor=admin_user)
        details = {"model": "claim-fraud", "drifted": ["v1 amount"]}
        alert = alert_raise(
            workspace_id=workspace.id,
            key="drift:claim-fraud",
            kind="drift",
            summary="claim-fraud: drift in v1 amount",
            details=details,
        )
        alert_resolve(workspace_id=workspace.id, key=alert.key, summary="claim-fraud: no drift")

    events = [json.loads(request["body"]) for request in receiver.requests]
    assert [event["type"] for event in events] == ["monitoring.alert", "monitoring.recovery"]
    assert events[0]["data"]["drifted"] == ["v1 amount"]
    for request in receiver.requests:  # as Flowgate's own webhook endpoint checks them
        headers = {name.lower(): value for name, value in request["headers"].items()}
        verify(SECRET, headers, request["body"].encode())

    alert.refresh_from_db()
    outcomes = [(d["channel"], d["notice"], d["ok"]) for d in alert.deliveries]
    assert outcomes == [
        ("ops-hook", "alert", True),
        ("missing-connection", "alert", False),
        ("ops-hook", "recovery", True),
        ("missing-connection", "recovery", False),
    ]
    assert "no connection named" in alert.deliveries[1]["message"]
