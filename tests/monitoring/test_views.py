"""The monitoring panels and acknowledging an alert (audited), with the personas."""

from __future__ import annotations

from apps.audit.models import AuditEvent
from apps.monitoring.alerts import alert_raise, alert_resolve
from apps.monitoring.models import MonitoringAlert


def raise_drift_alert(workspace):
    return alert_raise(
        workspace_id=workspace.id,
        key="drift:claim-fraud",
        kind="drift",
        summary="claim-fraud: drift in v1 amount",
        details={"model": "claim-fraud", "drifted": ["v1 amount"]},
    )


def test_an_alert_is_raised_once_while_its_condition_holds_and_resolves(workspace):
    first = raise_drift_alert(workspace)
    assert first is not None and raise_drift_alert(workspace) is None
    resolved = alert_resolve(workspace_id=workspace.id, key=first.key, summary="no drift")
    assert resolved.state == "resolved"
    assert raise_drift_alert(workspace) is not None  # the condition came back: a new alert
    actions = list(AuditEvent.objects.filter(object_id=first.key).values_list("action", flat=True))
    assert actions.count("monitoring.alert_raised") == 2
    assert actions.count("monitoring.alert_resolved") == 1


def test_dashboard_panel_lists_alerts_and_an_admin_acknowledges_one(
    workspace, admin_client, admin_user
):
    alert = raise_drift_alert(workspace)
    panel = admin_client.get(f"/w/{workspace.slug}/monitoring/")
    assert panel.status_code == 200 and "claim-fraud: drift in v1 amount" in panel.text
    url = f"/w/{workspace.slug}/monitoring/alerts/{alert.id}/acknowledge/"
    answer = admin_client.post(url, HTTP_HX_REQUEST="true")
    assert answer.status_code == 200 and "Acknowledge</button>" not in answer.text
    alert.refresh_from_db()
    assert alert.acknowledged_by == admin_user
    event = AuditEvent.objects.get(action="monitoring.alert_acknowledged")
    assert event.actor_label == admin_user.get_username() or event.actor_id == admin_user.id
    again = admin_client.post(url)
    assert again.status_code == 409 and "already acknowledged" in again.text


def test_a_reviewer_may_not_acknowledge_and_an_outsider_sees_nothing(
    workspace, reviewer_client, outsider_client
):
    alert = raise_drift_alert(workspace)
    url = f"/w/{workspace.slug}/monitoring/alerts/{alert.id}/acknowledge/"
    assert reviewer_client.post(url).status_code == 403
    assert outsider_client.get(f"/w/{workspace.slug}/monitoring/").status_code == 404
    assert MonitoringAlert.objects.get(pk=alert.pk).acknowledged_at is None


def test_labels_api_refuses_bad_input_with_a_message(workspace, admin_client):
    url = f"/api/w/{workspace.slug}/monitoring/labels/"
    missing = admin_client.post(url, {"label": "fraud"}, content_type="application/json")
    assert missing.status_code == 400 and "business key" in missing.text
    empty = admin_client.post(url, {"labels": []}, content_type="application/json")
    assert empty.status_code == 400
