"""Alerts: raised once per condition (deduplicated by key), delivered to the model's
channels (SMTP and outgoing-webhook connections), resolved with a recovery notice when the
condition clears, acknowledged by a person. Every step is audited.

Delivery happens after the alert row commits; a channel that fails is recorded on the
alert (``deliveries``) and does not stop the others.
"""

from __future__ import annotations

import json
import logging
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.audit.services import audit_record

from .models import AlertState, ModelMonitor, MonitoringAlert

logger = logging.getLogger(__name__)


class AlertError(Exception):
    def __init__(self, message: str, *, status: int = 409) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def alert_raise(
    *, workspace_id: Any, key: str, kind: str, summary: str, details: dict[str, Any]
) -> MonitoringAlert | None:
    """Open an alert and deliver it, unless one with ``key`` is open already (None)."""
    if MonitoringAlert.objects.filter(
        workspace_id=workspace_id, key=key, state=AlertState.OPEN
    ).exists():
        return None
    try:
        with transaction.atomic():
            alert = MonitoringAlert.objects.create(
                workspace_id=workspace_id, key=key, kind=kind, summary=summary, details=details
            )
            _audit(alert, "monitoring.alert_raised", summary)
    except IntegrityError:  # raised concurrently by another worker: delivered there
        return None
    alert_deliver(alert=alert, notice="alert")
    return alert


def alert_resolve(*, workspace_id: Any, key: str, summary: str) -> MonitoringAlert | None:
    """Resolve the open alert with ``key`` (if any) and send its recovery notice."""
    with transaction.atomic():
        alert = (
            MonitoringAlert.objects.select_for_update()
            .filter(workspace_id=workspace_id, key=key, state=AlertState.OPEN)
            .first()
        )
        if alert is None:
            return None
        alert.state, alert.resolved_at = AlertState.RESOLVED, timezone.now()
        alert.details = {**alert.details, "recovery": summary}
        alert.save(update_fields=["state", "resolved_at", "details"])
        _audit(alert, "monitoring.alert_resolved", summary)
    alert_deliver(alert=alert, notice="recovery")
    return alert


def alert_acknowledge(*, workspace: Any, alert_id: Any, actor: Any) -> MonitoringAlert:
    with transaction.atomic():
        alert = (
            MonitoringAlert.objects.select_for_update()
            .filter(workspace=workspace, pk=alert_id)
            .first()
        )
        if alert is None:
            raise AlertError("No such alert.", status=404)
        if alert.acknowledged_at:
            raise AlertError("This alert was already acknowledged.")
        alert.acknowledged_by, alert.acknowledged_at = actor, timezone.now()
        alert.save(update_fields=["acknowledged_by", "acknowledged_at"])
        _audit(alert, "monitoring.alert_acknowledged", f"acknowledged: {alert.summary}", actor)
    return alert


def _audit(alert: MonitoringAlert, action: str, summary: str, actor: Any = None) -> None:
    audit_record(
        workspace_id=alert.workspace_id,
        action=action,
        actor=actor,
        actor_label="" if actor else "monitoring",
        object_type="alert",
        object_id=alert.key,
        summary=summary,
        data={"alert": str(alert.id), "kind": alert.kind, "details": alert.details},
    )


def _channels(alert: MonitoringAlert) -> tuple[list[str], list[str]]:
    """(connection names, recipients): the model's, or every monitor's for a workspace
    alert (an SLO breach)."""
    monitors = ModelMonitor.objects.filter(workspace_id=alert.workspace_id)
    if alert.details.get("model"):
        monitors = monitors.filter(model_name=alert.details["model"])
    names: list[str] = []
    recipients: list[str] = []
    for monitor in monitors:
        names += [n for n in monitor.alert_connections if n not in names]
        recipients += [r for r in monitor.alert_recipients if r not in recipients]
    return names, recipients


def alert_deliver(*, alert: MonitoringAlert, notice: str) -> list[dict[str, Any]]:
    """Send ``notice`` (alert or recovery) to each channel; record each outcome."""
    from apps.connectors.services import WorkspaceConnections

    names, recipients = _channels(alert)
    outcomes = []
    for name in names:
        try:
            handle = WorkspaceConnections(alert.workspace_id).get(name, type=("smtp", "webhook"))
            sender = _send_email if handle.type == "smtp" else _send_webhook
            message = sender(handle, alert, notice, recipients)
            outcomes.append({"channel": name, "notice": notice, "ok": True, "message": message})
        except Exception as error:  # one failing channel must not hide the alert elsewhere
            logger.warning("alert %s not delivered to %s: %s", alert.key, name, error)
            message = getattr(error, "message", "") or str(error)
            outcomes.append({"channel": name, "notice": notice, "ok": False, "message": message})
    for outcome in outcomes:
        outcome["at"] = timezone.now().isoformat()
    MonitoringAlert.objects.filter(pk=alert.pk).update(deliveries=alert.deliveries + outcomes)
    alert.deliveries = alert.deliveries + outcomes
    return outcomes


def _subject(alert: MonitoringAlert, notice: str) -> str:
    prefix = "[Flowgate] Resolved: " if notice == "recovery" else "[Flowgate] Alert: "
    return (prefix + alert.summary).replace("\r", " ").replace("\n", " ")[:300]


def _send_email(handle: Any, alert: MonitoringAlert, notice: str, recipients: list[str]) -> str:
    from apps.connectors.email import client

    if not recipients:
        raise AlertError("no alert recipients are set for this model")
    message = EmailMessage()
    message["From"] = handle.config.from_address
    message["To"] = ", ".join(recipients)
    message["Subject"] = _subject(alert, notice)
    message["Date"] = formatdate(localtime=False)
    message["X-Flowgate-Alert"] = alert.key
    lines = [alert.summary, "", json.dumps(alert.details, indent=2, default=str)]
    message.set_content("\n".join(lines))
    client.send(handle.config, {"password": handle.secret("password")}, message)
    return f"sent to {len(recipients)} recipient(s)"


def _send_webhook(handle: Any, alert: MonitoringAlert, notice: str, recipients: list[str]) -> str:
    """Signed like every outgoing webhook (Standard Webhooks), to the connection's URL only:
    no redirect is followed, and the workspace's egress allow-list applies."""
    from apps.connectors.selectors import egress_allowlist_get
    from apps.connectors.webhook.signing import signed_headers
    from apps.core.http import egress_allowed, safe_client

    event = {
        "id": f"{alert.id}:{notice}",
        "type": f"monitoring.{notice}",
        "data": {"kind": alert.kind, "key": alert.key, "summary": alert.summary, **alert.details},
    }
    body = json.dumps(event, separators=(",", ":"), default=str).encode()
    headers: dict[str, str] = {
        "Content-Type": "application/json",
        "X-Event-Id": str(event["id"]),
        **signed_headers(handle.secret("signing_secret"), message_id=str(event["id"]), body=body),
    }
    allowlist = egress_allowlist_get(workspace_id=alert.workspace_id)
    with egress_allowed(allowlist), safe_client(timeout=10, follow_redirects=False) as http:
        response = http.post(handle.config.url, content=body, headers=headers)
    if response.status_code >= 300:
        raise AlertError(f"the receiver answered {response.status_code}")
    return f"the receiver answered {response.status_code}"
