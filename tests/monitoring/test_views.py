"""The monitoring panels and acknowledging an alert (audited), with the personas."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.monitoring.alerts import alert_raise, alert_resolve
from apps.monitoring.models import MonitoringAlert


def record_sample(workspace, **answer):
    """One sampled claim-fraud v1 answer through the recorder the model block calls."""
    import uuid

    from apps.monitoring.sampling import PredictionRecorder

    PredictionRecorder(str(workspace.id)).record(
        **{
            "run_id": str(uuid.uuid4()),
            "node_id": "score",
            "model": "claim-fraud",
            "version": "1",
            "alias": "production",
            "inputs": {},
            "label": "legit",
            "score": 0.8,
            **answer,
        }
    )


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


def test_an_admin_sets_a_models_monitoring_and_a_builder_may_not(
    workspace, admin_client, builder_client
):
    url = f"/api/w/{workspace.slug}/monitoring/models/claim-fraud/"
    assert admin_client.get(url).status_code == 404  # not monitored here yet
    change = {"sample_rate": 0.25, "accuracy_min": 0.8, "alert_recipients": ["ops@example.com"]}
    created = admin_client.post(
        f"/api/w/{workspace.slug}/monitoring/models/",
        {"model_name": "claim-fraud", **change},
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    shown = admin_client.get(url).json()["settings"]
    assert shown["sample_rate"] == 0.25 and shown["window_minutes"] == 60
    listed = admin_client.get(f"/api/w/{workspace.slug}/monitoring/models/").json()
    assert [item["model"] for item in listed["results"]] == ["claim-fraud"]
    assert AuditEvent.objects.filter(action="monitoring.settings_changed").exists()
    assert builder_client.put(url, change, content_type="application/json").status_code == 403
    bad = admin_client.put(url, {"sample_rate": 2}, content_type="application/json")
    assert bad.status_code == 400 and "sample_rate" in bad.text
    assert (
        admin_client.put(url, {"window_minutes": 30}, content_type="application/json").json()[
            "window_minutes"
        ]
        == 30
    )


def test_dashboard_panel_reads_a_fixed_number_of_queries(
    workspace, admin_client, django_assert_max_num_queries
):
    for number in range(15):
        alert_raise(
            workspace_id=workspace.id,
            key=f"drift:model-{number}",
            kind="drift",
            summary=f"model-{number}: drift",
            details={"model": f"model-{number}"},
        )
    with django_assert_max_num_queries(12):
        assert admin_client.get(f"/w/{workspace.slug}/monitoring/").status_code == 200


def test_samples_past_the_workspace_retention_are_purged(workspace, admin_user):
    from datetime import timedelta

    from django.utils import timezone

    from apps.audit.services import data_settings_save
    from apps.monitoring.models import PredictionSample
    from apps.monitoring.services import samples_purge

    data_settings_save(
        workspace=workspace, actor=admin_user, sensitive_fields=[], retention_days=30
    )
    for _ in range(2):
        record_sample(workspace, inputs={"amount": 10}, business_key="jane@example.com")
    old = PredictionSample.objects.filter(workspace=workspace).first()
    assert "jane" not in old.business_key and old.business_key  # a keyed hash, never raw
    PredictionSample.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=31)
    )
    assert samples_purge(workspace_id=workspace.id) == 1
    assert PredictionSample.objects.filter(workspace=workspace).count() == 1


def test_live_signals_per_version_count_shadow_agreement_and_labelled_accuracy(workspace):
    from datetime import timedelta

    from django.utils import timezone

    from apps.monitoring.selectors import version_signals

    answers = [("fraud", "fraud", 10.0), ("fraud", "legit", 20.0), ("legit", "legit", 30.0)]
    for label, shadow, latency in answers:
        record_sample(workspace, label=label, latency_ms=latency, shadow_label=shadow)
    signals = version_signals(
        workspace_id=workspace.id,
        model_name="claim-fraud",
        since=timezone.now() - timedelta(minutes=5),
    )["1"]
    assert signals["samples"] == 3 and signals["latency_ms"] == 20.0
    assert signals["agreement"] == 2 / 3 and signals["shadowed"] == 3
    assert signals["accuracy"] is None


def settings_form(**changes) -> dict:
    form = {
        "sample_rate": "0.5",
        "window_minutes": "30",
        "drift_p_value": "0.01",
        "min_window_samples": "20",
        "accuracy_min": "0.75",
        "alert_recipients": "ops@example.com, risk@example.com",
        "review_labels": "approve: legit\nreject: fraud",
    }
    return {**form, **changes}


def test_an_admin_changes_monitoring_settings_in_the_models_form(
    workspace, admin_user, admin_client, builder_client
):
    from apps.monitoring.models import ModelMonitor
    from tests.monitoring.scenario import mail_channel

    mail_channel(workspace, admin_user)
    panel = admin_client.get(f"/w/{workspace.slug}/monitoring/models/claim-fraud/")
    assert 'name="alert_connections" value="ops-mail"' in panel.text
    url = f"/w/{workspace.slug}/monitoring/models/claim-fraud/settings/"
    saved = admin_client.post(url, settings_form(alert_connections="ops-mail"))
    assert saved.status_code == 200 and "Monitoring settings saved" in saved.text
    monitor = ModelMonitor.objects.get(workspace=workspace, model_name="claim-fraud")
    assert monitor.sample_rate == 0.5 and monitor.window_minutes == 30
    assert monitor.alert_connections == ["ops-mail"]
    assert monitor.alert_recipients == ["ops@example.com", "risk@example.com"]
    assert monitor.review_labels == {"approve": "legit", "reject": "fraud"}
    event = AuditEvent.objects.get(action="monitoring.settings_changed")
    assert event.actor_id == admin_user.id
    assert event.data["before"]["sample_rate"] == 1.0 and event.data["after"]["sample_rate"] == 0.5

    assert builder_client.post(url, settings_form()).status_code == 403
    assert admin_client.get(url).status_code == 405


@pytest.mark.parametrize(
    ("changes", "field_error"),
    [
        ({"sample_rate": "2"}, "less than or equal to 1"),
        ({"sample_rate": "lots"}, "valid number"),
        ({"window_minutes": "1"}, "greater than or equal to 5"),
        ({"alert_recipients": "not-an-address"}, "valid email"),
        ({"alert_connections": "nowhere"}, "no SMTP or webhook connection named nowhere"),
        ({"review_labels": "approve legit"}, "decision: label"),
    ],
)
def test_bad_monitoring_settings_are_refused_field_by_field(
    workspace, admin_client, changes, field_error
):
    from apps.monitoring.models import ModelMonitor

    url = f"/w/{workspace.slug}/monitoring/models/claim-fraud/settings/"
    refused = admin_client.post(url, settings_form(**changes))
    assert refused.status_code == 422
    assert field_error in refused.text and 'class="error" role="alert"' in refused.text
    assert (
        not ModelMonitor.objects.exists()
        and not AuditEvent.objects.filter(action="monitoring.settings_changed").exists()
    )


def test_the_settings_api_refuses_an_unknown_alert_channel(workspace, admin_client):
    answer = admin_client.post(
        f"/api/w/{workspace.slug}/monitoring/models/",
        {"model_name": "claim-fraud", "alert_connections": ["nowhere"]},
        content_type="application/json",
    )
    assert answer.status_code == 400 and "alert_connections" in answer.text
