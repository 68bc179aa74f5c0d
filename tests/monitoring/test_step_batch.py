"""A ``model.predict`` step runs on the engine's I/O threads; its monitoring row goes with
the batch that records the step's outcome (committed, through the real engine, model
service and Postgres), so the call's thread opens no database connection of its own."""

from __future__ import annotations

import threading

import pytest
from django.db.backends.postgresql.base import DatabaseWrapper

from apps.monitoring.models import PredictionSample
from apps.runs.engine import drain_queued
from apps.runs.models import Run, StepRun
from tests.mlmodels.helpers import mlflow_client
from tests.runs.helpers import published_flow

from .conftest import MONITORED, scoring_flow, start_claims, stream

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def production_v1(model_stack, registry_settings, monitored_versions):
    mlflow_client(model_stack).set_registered_model_alias(
        MONITORED, "production", monitored_versions[0].version
    )


@pytest.fixture
def io_thread_connections(monkeypatch):
    """Names of the I/O threads that opened a database connection (a spy: connecting
    still happens)."""
    opened: list[str] = []
    real_connect = DatabaseWrapper.connect

    def connect(self):
        if threading.current_thread().name.startswith("flowgate-io"):
            opened.append(threading.current_thread().name)
        return real_connect(self)

    monkeypatch.setattr(DatabaseWrapper, "connect", connect)
    return opened


def test_a_model_step_records_its_prediction_with_the_step_batch(
    production_v1, workspace, admin_user, io_thread_connections, monkeypatch
):
    from apps.monitoring import sampling
    from apps.monitoring.services import monitor_save

    flow = published_flow(workspace, admin_user, scoring_flow(review=False), name="Scoring")
    records, _ = stream(6, seed=77)
    runs = start_claims(flow, records, prefix="B", advance_each=False)
    # Warm what the recorder caches per process (sampling rate, PII classification),
    # which a step reads at most every few seconds: for longer than the drain below can
    # take on a busy machine (its first call loads the model in the service), since a
    # rate read again once its seconds are up is a query from the I/O thread.
    monkeypatch.setattr(sampling, "SETTINGS_SECONDS", 600.0)
    monitor_save(workspace=workspace, actor=admin_user, model_name=MONITORED, sample_rate=1.0)
    from apps.audit.redaction import sensitive_keys_for_workspace
    from apps.monitoring.sampling import sample_rate

    sample_rate(str(workspace.id), MONITORED)
    sensitive_keys_for_workspace(workspace.id)

    drain_queued(wake_another=lambda: None, batch_size=25, seconds=60)

    assert set(
        Run.objects.filter(pk__in=[r.pk for r in runs]).values_list("status", flat=True)
    ) == {"succeeded"}
    samples = PredictionSample.objects.filter(workspace=workspace, model_name=MONITORED)
    assert sorted(str(s.run_id) for s in samples) == sorted(str(r.pk) for r in runs)
    for sample in samples:
        step = StepRun.objects.get(run_id=sample.run_id, node_id="score", status="succeeded")
        assert sample.label == step.output["label"] and sample.version == step.output["version"]
        assert sample.inputs["amount"] is not None and sample.business_key
    # The model call itself needs no database: the sample rode the step batch.
    assert io_thread_connections == []
