"""The dashboard page and the Prometheus endpoint show what the runs did."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.dashboard import rollups, selectors
from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.models import Run, StepRun
from apps.runs.services import run_start
from tests.runs.helpers import definition, node, published_flow

pytestmark = pytest.mark.django_db(transaction=True)

GOOD = definition(
    [node("start", "trigger.manual"), node("calc", "transform.set", values={"x": "1"})],
    [("start", "calc")],
)
BROKEN = definition(
    [node("start", "trigger.manual"), node("calc", "transform.set", values={"x": "nope.deep"})],
    [("start", "calc")],
)
WAITS = definition(
    [node("start", "trigger.manual"), node("wait", "util.delay", duration="1h")],
    [("start", "wait")],
)


def execute(flow, body=None) -> Run:
    run = run_start(flow=flow, trigger="manual", payload=envelope(body or {}), enqueue=False).run
    advance(run.id)
    run.refresh_from_db()
    return run


@pytest.fixture
def history(workspace, builder_user):
    good = published_flow(workspace, builder_user, GOOD, name="Good flow")
    broken = published_flow(workspace, builder_user, BROKEN, name="Broken flow")
    waits = published_flow(workspace, builder_user, WAITS, name="Waiting flow")
    runs = [execute(good) for _ in range(3)] + [execute(broken), execute(waits)]
    return {"runs": runs, "failed": runs[3]}


def dashboard_url(slug="acme"):
    return reverse("dashboard:list", kwargs={"workspace_slug": slug})


def test_dashboard_shows_runs_failure_rate_latency_waiting_and_failures(
    builder_client, history, django_assert_max_num_queries
):
    # A constant number of queries, however many runs, steps and block types there are
    # (AI calls per model: two more).
    with django_assert_max_num_queries(20):
        response = builder_client.get(dashboard_url())
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-stat="total">5<' in body
    assert 'data-stat="failure-rate">25%<' in body  # 1 failed of 4 finished
    assert 'data-stat="queue-depth">0<' in body and "· 1 delay" in body
    assert "<code>transform.set</code>" in body  # latency table per block
    assert str(history["failed"].id)[:8] in body and "Broken flow" in body
    # 1 failed of 9 finished attempts: 5 triggers, 4 transforms (the delay still waits).
    assert 'data-stat="error-rate">11%<' in body
    assert 'data-chart="runs"' in body and 'data-chart="steps"' in body
    assert "/api/w/acme/dashboard/?range=today" in body  # the charts' data source
    assert "data-live-poll" in body and 'src="/static/dashboard.js"' in body


def test_dashboard_time_range_and_htmx_partial(builder_client, history):
    Run.objects.update(created_at="2020-01-01T00:00:00Z", finished_at="2020-01-01T00:00:00Z")
    StepRun.objects.update(started_at="2020-01-01T00:00:00Z", finished_at="2020-01-01T00:00:00Z")
    body = builder_client.get(dashboard_url(), {"range": "7d"}).content.decode()
    assert 'data-stat="total">0<' in body and "No step finished in this range." in body
    partial = builder_client.get(dashboard_url(), {"range": "1h"}, HTTP_HX_REQUEST="true")
    assert b'id="dashboard-panels"' in partial.content and b"<html" not in partial.content


def test_dashboard_counts_only_the_own_workspace(outsider_client, reviewer_client, history):
    assert outsider_client.get(dashboard_url()).status_code == 404
    theirs = outsider_client.get(dashboard_url("globex")).content.decode()
    assert 'data-stat="total">0<' in theirs and "Broken flow" not in theirs
    assert reviewer_client.get(dashboard_url()).status_code == 200


def test_step_percentiles_and_histograms_come_from_the_database(workspace, history):
    StepRun.objects.filter(block_type="transform.set", status="succeeded").update(duration_ms=20)
    rollups.materialise()
    rows = selectors.step_latency_by_block(workspace=workspace, since=selectors.range_start("24h"))
    row = next(r for r in rows if r["block_type"] == "transform.set")
    assert row["count"] == 4 and row["failed"] == 1
    histogram = next(h for h in selectors.step_duration_histograms() if h.block == "transform.set")
    assert histogram.count == 4
    assert dict(histogram.buckets)[0.032] >= 3  # the three 20 ms attempts
    assert dict(histogram.buckets)[0.016] <= 1


def test_metrics_expose_run_and_step_figures_after_runs(client, history):
    response = client.get("/metrics")  # the test client calls from 127.0.0.1
    assert response.status_code == 200
    text = response.content.decode()
    assert 'flowgate_runs_started_total{trigger="manual"} 5.0' in text
    assert 'flowgate_runs_finished_total{status="succeeded"} 3.0' in text
    assert 'flowgate_runs_finished_total{status="failed"} 1.0' in text
    assert 'flowgate_runs_active{status="waiting"} 1.0' in text
    assert 'flowgate_step_duration_seconds_count{block="transform.set"} 4.0' in text
    assert 'flowgate_step_duration_seconds_bucket{block="transform.set",le="+Inf"} 4.0' in text
    assert 'flowgate_step_attempts_total{block="transform.set",status="failed"} 1.0' in text
    assert 'flowgate_waiting_steps{kind="delay"} 1.0' in text
    assert "flowgate_queue_lag_seconds 0.0" in text


def test_metrics_are_hidden_from_other_networks_and_need_the_token_when_set(
    client, settings, history
):
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 404
    settings.FLOWGATE = {**settings.FLOWGATE, "METRICS_TOKEN": "scrape-me"}
    assert client.get("/metrics").status_code == 404  # loopback is not enough any more
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 404
    right = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me", REMOTE_ADDR="203.0.113.9")
    assert right.status_code == 200 and b"flowgate_runs_started_total" in right.content


def test_review_backlog_on_the_dashboard_and_in_metrics(
    builder_client, client, workspace, builder_user
):
    from tests.inbox.helpers import start_waiting_run

    run = start_waiting_run(workspace, builder_user)
    assert run.status == "waiting"
    body = builder_client.get(dashboard_url()).content.decode()
    assert 'data-stat="backlog">1<' in body and "0 overdue" in body
    assert "flowgate_review_tasks_open 1.0" in client.get("/metrics").content.decode()


def test_the_chart_title_names_the_bucket_of_the_range(builder_client, history):
    hour = builder_client.get(dashboard_url(), {"range": "1h"}).content.decode()
    assert "<h2>Runs per 5 minutes, by status</h2>" in hour
    assert "/api/w/acme/dashboard/?range=1h" in hour
    week = builder_client.get(dashboard_url(), {"range": "7d"}).content.decode()
    assert "<h2>Runs per 6 hours, by status</h2>" in week
    unknown = builder_client.get(dashboard_url(), {"range": "1y"}).content.decode()
    assert 'aria-current="true">Today<' in unknown


def slo_url(slug="acme"):
    return reverse("dashboard:slo", kwargs={"workspace_slug": slug})


SLO_FORM = {
    "run_success_percent": "70",
    "step_p95_ms": "1500",
    "model_p95_ms": "400",
    "policy_p95_ms": "20",
    "inbox_oldest_hours": "8",
}


def test_an_admin_edits_slo_targets_and_the_change_is_audited(admin_client, history):
    from apps.audit.models import AuditEvent

    before = admin_client.get(dashboard_url()).content.decode()
    assert 'data-slo="run_success_percent"' in before and "≥ 95 %" in before
    assert "slo-breached" in before  # 3 of 4 finished runs succeeded: 75 % < 95 %

    response = admin_client.post(slo_url(), SLO_FORM)
    assert response.status_code == 302

    after = admin_client.get(dashboard_url()).content.decode()
    success_row = after.split('data-slo="run_success_percent"')[1].split("</tr>")[0]
    assert "≥ 70 %" in success_row and "75.0 %" in success_row and "slo-met" in success_row
    event = AuditEvent.objects.get(action="settings.slo_changed")
    assert event.data["before"]["run_success_percent"] == 95.0
    assert event.data["after"]["inbox_oldest_hours"] == 8.0


def test_invalid_slo_targets_are_a_400_with_the_field_error_and_nothing_saved(admin_client):
    from apps.dashboard.models import SloTargets

    response = admin_client.post(slo_url(), {**SLO_FORM, "run_success_percent": "140"})
    assert response.status_code == 400
    assert "less than or equal to 100" in response.content.decode()
    missing = admin_client.post(slo_url(), {**SLO_FORM, "model_p95_ms": ""})
    assert missing.status_code == 400 and "This field is required." in missing.content.decode()
    assert not SloTargets.objects.exists()


def test_only_admins_edit_slo_targets(builder_client, outsider_client):
    assert builder_client.get(slo_url()).status_code == 403
    assert builder_client.post(slo_url(), SLO_FORM).status_code == 403
    assert outsider_client.get(slo_url()).status_code == 404
    assert "Edit targets" not in builder_client.get(dashboard_url()).content.decode()


def test_metrics_expose_queue_depth_error_ratios_and_slo_states(client, other_workspace, history):
    text = client.get("/metrics").content.decode()
    assert "flowgate_queue_depth 0.0" in text
    assert 'flowgate_step_error_ratio{workspace="acme"} 0.111' in text
    assert 'flowgate_step_retry_ratio{workspace="acme"} 0.0' in text
    assert 'flowgate_model_inferences{workspace="acme"} 0.0' in text
    assert 'flowgate_slo_target{slo="run_success_percent",workspace="acme"} 95.0' in text
    assert 'flowgate_slo_measured{slo="run_success_percent",workspace="acme"} 75.0' in text
    assert 'flowgate_slo_met{slo="run_success_percent",workspace="acme"} 0.0' in text
    assert 'flowgate_slo_met{slo="inbox_oldest_hours",workspace="acme"} 1.0' in text
    # No model was called: no measurement, so no verdict either.
    assert 'flowgate_slo_met{slo="model_p95_ms",workspace="acme"}' not in text
    assert 'flowgate_slo_target{slo="model_p95_ms",workspace="globex"} 500.0' in text
