"""Drift and labels against the real MLflow and BentoML services: generated claims go
through the model block, are sampled into Postgres, and are judged against the training
profile logged to MLflow."""

from __future__ import annotations

import pytest

from apps.audit.redaction import MASK
from apps.monitoring.models import PredictionSample
from apps.monitoring.services import drift_check
from tests.mlmodels.helpers import mlflow_client

from .conftest import MONITORED, predict, stream

pytestmark = [pytest.mark.slow]


@pytest.fixture
def production_v1(db, model_stack, registry_settings, monitored_versions):
    client = mlflow_client(model_stack)
    client.set_registered_model_alias(MONITORED, "production", monitored_versions[0].version)
    return monitored_versions[0]


def run_stream(model_stack, workspace, records):
    for number, record in enumerate(records):
        predict(model_stack.service.url, workspace.id, {**record, "claim_number": f"C-{number}"})


def drifted(workspace) -> set[str]:
    return {
        r.feature for r in drift_check(workspace_id=workspace.id, model_name=MONITORED) if r.drifted
    }


def test_training_profile_is_logged_with_the_registered_version(production_v1):
    from apps.mlmodels.registry import reference_profile

    profile = reference_profile(MONITORED, production_v1.version)
    assert set(profile["features"]) == {
        "amount",
        "claimant_age",
        "days_since_policy_start",
        "prior_claims",
        "channel",
    }
    assert profile["features"]["channel"]["type"] == "categorical"
    assert set(profile["prediction"]) == {"label", "score"}


def test_a_stable_stream_is_not_flagged(production_v1, workspace, model_stack):
    records, _ = stream(80, seed=101)
    run_stream(model_stack, workspace, records)
    assert PredictionSample.objects.filter(workspace=workspace, model_name=MONITORED).count() == 80
    assert drifted(workspace) == set()


def test_a_stream_that_shifts_part_way_is_flagged_within_one_window(
    production_v1, workspace, model_stack
):
    records, _ = stream(80, seed=101, shift_from=40)
    run_stream(model_stack, workspace, records)
    found = drifted(workspace)
    assert {"amount", "channel"} <= found, found


def test_the_windows_distributions_are_shown_beside_the_training_reference(
    production_v1, workspace, model_stack
):
    from apps.monitoring.services import window_distributions

    records, _ = stream(60, seed=303, shift_from=0)  # every claim through the web
    run_stream(model_stack, workspace, records)
    fields = {
        row["feature"]: row
        for row in window_distributions(
            workspace_id=workspace.id, model_name=MONITORED, window_minutes=60
        )
    }
    assert set(fields) >= {"amount", "channel", "prediction.label", "prediction.score"}
    channel = fields["channel"]
    shares = dict(zip(channel["labels"], channel["live"], strict=True))
    assert shares["web"] == 1.0 and channel["samples"] == 60
    training = dict(zip(channel["labels"], channel["reference"], strict=True))
    assert 0.2 < training["web"] < 0.8  # the reference keeps its own shares
    amount = fields["amount"]
    assert len(amount["labels"]) == len(amount["reference"]) == len(amount["live"])
    assert abs(sum(amount["reference"]) - 1) < 0.01 and abs(sum(amount["live"]) - 1) < 0.01
    assert amount["live"][-1] > 0.5  # tripled amounts fall in the top decile


def test_pii_fields_are_masked_and_a_zero_rate_stores_no_features(
    production_v1, workspace, admin_user, model_stack
):
    from apps.audit.services import data_settings_save
    from apps.monitoring.services import monitor_save

    data_settings_save(
        workspace=workspace, actor=admin_user, sensitive_fields=["claimant_age"], retention_days=30
    )
    records, _ = stream(3, seed=3)
    run_stream(model_stack, workspace, records)
    sample = PredictionSample.objects.filter(workspace=workspace).first()
    assert sample.inputs["claimant_age"] == MASK
    assert sample.inputs["amount"] == records[0]["amount"] and sample.label in {"fraud", "legit"}

    monitor_save(workspace=workspace, actor=admin_user, model_name=MONITORED, sample_rate=0.0)
    run_stream(model_stack, workspace, records)
    # Every step is recorded (labels join it), but a step not drawn keeps no features.
    unsampled = PredictionSample.objects.filter(workspace=workspace, sampled=False)
    assert unsampled.count() == 3 and PredictionSample.objects.filter(sampled=True).count() == 3
    assert all(row.inputs == {} and row.label in {"fraud", "legit"} for row in unsampled)


def test_labels_join_predictions_that_were_not_sampled(
    production_v1, workspace, admin_user, admin_client, model_stack
):
    from apps.monitoring.services import monitor_save

    monitor_save(
        workspace=workspace,
        actor=admin_user,
        model_name=MONITORED,
        sample_rate=0.0,
        min_window_samples=5,
    )
    records, labels = stream(30, seed=505)
    run_ids = []
    for number, record in enumerate(records):
        run_id, _ = predict(
            model_stack.service.url, workspace.id, {**record, "claim_number": f"U-{number}"}
        )
        run_ids.append(run_id)
    url = f"/api/w/{workspace.slug}/monitoring/labels/"
    by_step = [
        {"run_id": run_id, "step_id": "score", "label": label}
        for run_id, label in zip(run_ids[:15], labels[:15], strict=True)
    ]
    by_key = [{"business_key": f"U-{number}", "label": labels[number]} for number in range(15, 30)]
    answer = admin_client.post(url, {"labels": by_step + by_key}, content_type="application/json")
    assert answer.status_code == 201, answer.content
    assert [item["labelled"] for item in answer.json()] == [1] * 30

    series = admin_client.get(f"/api/w/{workspace.slug}/monitoring/models/{MONITORED}/").json()
    [window] = series["performance"]
    assert window["labelled"] == 30 and 0.6 <= window["accuracy"] <= 1.0
    # No features were stored, so there is nothing to judge drift on.
    assert drift_check(workspace_id=workspace.id, model_name=MONITORED) == []


def test_labels_posted_later_produce_the_accuracy_series(
    production_v1, workspace, admin_client, model_stack
):
    records, labels = stream(40, seed=202)
    run_ids = []
    for number, record in enumerate(records):
        run_id, _ = predict(
            model_stack.service.url, workspace.id, {**record, "claim_number": f"C-{number}"}
        )
        run_ids.append(run_id)
    url = f"/api/w/{workspace.slug}/monitoring/labels/"
    by_step = [
        {"run_id": run_id, "step_id": "score", "label": label}
        for run_id, label in zip(run_ids[:20], labels[:20], strict=True)
    ]
    answer = admin_client.post(url, {"labels": by_step}, content_type="application/json")
    assert answer.status_code == 201, answer.content
    assert all(item["labelled"] == 1 for item in answer.json())
    for number in range(20, 40):  # by business key, one at a time
        single = {"business_key": f"C-{number}", "label": labels[number]}
        assert admin_client.post(url, single, content_type="application/json").status_code == 201
    unknown = admin_client.post(
        url, {"business_key": "nope", "label": "fraud"}, content_type="application/json"
    )
    assert unknown.status_code == 404

    series = admin_client.get(f"/api/w/{workspace.slug}/monitoring/models/{MONITORED}/").json()
    [window] = series["performance"]
    assert window["version"] == production_v1.version and window["labelled"] == 40
    assert 0.6 <= window["accuracy"] <= 1.0 and 0 < window["f1_macro"] <= 1.0


def test_train_demo_weak_registers_a_worse_version_with_its_profile(
    db, model_stack, registry_settings
):
    from io import StringIO

    from django.core.management import call_command

    from apps.mlmodels import registry
    from apps.mlmodels.training import TICKET_TRIAGE

    output = StringIO()
    # No owner: the session registry is shared with tests whose workspace is not "demo".
    call_command(
        "models", "train_demo", "--model", TICKET_TRIAGE, "--weak", "--owner", "", stdout=output
    )
    model = registry.get_model(TICKET_TRIAGE)
    weak, good = model.versions[0], model.versions[1]
    assert f"registered {TICKET_TRIAGE} version {weak.version}" in output.getvalue()
    assert weak.metrics["accuracy"] < good.metrics["accuracy"] - 0.2
    assert registry.reference_profile(TICKET_TRIAGE, weak.version)["features"]["text"]
