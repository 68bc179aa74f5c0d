"""Run pages: the list with filters, the dead-letter list and its bulk actions, run detail
with live refresh, and permissions (reviewers watch, outsiders get 404)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.flows.services import flow_publish
from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.models import Run, StepRun
from apps.runs.services import run_start
from tests.runs.helpers import definition, node, published_flow
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

GOOD = definition(
    [
        node("start", "trigger.manual"),
        node("check", "logic.branch", condition="trigger.body.amount > 100"),
        node("big", "transform.set", values={"size": "'big'"}),
        node("small", "transform.set", values={"size": "'small'"}),
    ],
    [("start", "check"), ("check", "big", "true"), ("check", "small", "false")],
)
BROKEN = definition(
    [
        node("start", "trigger.manual"),
        node("calc", "transform.set", values={"x": "trigger.body.missing.deep"}),
    ],
    [("start", "calc")],
    name="Broken flow",
)
FIXED = definition(
    [node("start", "trigger.manual"), node("calc", "transform.set", values={"x": "1"})],
    [("start", "calc")],
    name="Broken flow",
)
WAITS = definition(
    [node("start", "trigger.manual"), node("wait", "util.delay", duration="1h")],
    [("start", "wait")],
)


def url(name, **kwargs):
    return reverse(f"runs:{name}", kwargs={"workspace_slug": "acme", **kwargs})


def execute(flow, body, **kwargs) -> Run:
    run = run_start(
        flow=flow, trigger="manual", payload=envelope(body), enqueue=False, **kwargs
    ).run
    advance(run.id)
    run.refresh_from_db()
    return run


@pytest.fixture
def good_flow(workspace, builder_user):
    return published_flow(workspace, builder_user, GOOD, name="Claims triage")


@pytest.fixture
def broken_flow(workspace, builder_user):
    return published_flow(workspace, builder_user, BROKEN, name="Broken flow")


def test_list_shows_runs_with_flow_status_and_a_bounded_query_count(
    builder_client, good_flow, broken_flow, django_assert_max_num_queries
):
    for amount in (5, 500, 7):
        execute(good_flow, {"amount": amount})
    execute(broken_flow, {})
    with django_assert_max_num_queries(10):
        response = builder_client.get(url("list"))
    assert response.status_code == 200
    body = response.content.decode()
    assert body.count("Claims triage<br>") == 3 and "Broken flow<br>" in body
    assert "Succeeded" in body and "Failed" in body
    assert "data-live-runs" in body  # the table refreshes on live events


def test_list_filters_by_status_flow_trigger_and_date(builder_client, good_flow, broken_flow):
    ok = execute(good_flow, {"amount": 1})
    failed = execute(broken_flow, {})
    by_status = builder_client.get(url("list"), {"status": "failed"}).content.decode()
    assert str(failed.id)[:8] in by_status and str(ok.id)[:8] not in by_status
    by_flow = builder_client.get(url("list"), {"flow": str(good_flow.id)}).content.decode()
    assert str(ok.id)[:8] in by_flow and str(failed.id)[:8] not in by_flow
    assert (
        str(ok.id)[:8]
        not in builder_client.get(url("list"), {"trigger": "webhook"}).content.decode()
    )
    today = ok.created_at.date().isoformat()
    dated = builder_client.get(url("list"), {"since": today, "until": today}).content.decode()
    assert str(ok.id)[:8] in dated
    assert (
        str(ok.id)[:8]
        not in builder_client.get(url("list"), {"since": "2999-01-01"}).content.decode()
    )


def test_list_rejects_an_inverted_date_range_and_paginates(builder_client, good_flow):
    response = builder_client.get(url("list"), {"since": "2026-02-02", "until": "2026-01-01"})
    assert response.status_code == 400
    assert b"before the start date" in response.content
    for _ in range(26):
        run_start(flow=good_flow, trigger="manual", payload=envelope({}), enqueue=False)
    first = builder_client.get(url("list")).content.decode()
    assert "Page 1 of 2" in first and "26 runs" in first
    assert "Page 2 of 2" in builder_client.get(url("list"), {"page": 2}).content.decode()


def test_htmx_refresh_returns_only_the_table(builder_client, good_flow):
    execute(good_flow, {"amount": 1})
    response = builder_client.get(url("list"), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert b'id="run-table"' in response.content and b"<html" not in response.content


def test_detail_shows_input_result_steps_ports_and_errors(builder_client, good_flow, broken_flow):
    run = execute(good_flow, {"amount": 500, "customer": "Zoë"})
    body = builder_client.get(url("detail", run_id=run.id)).content.decode()
    assert "Zoë" in body  # trigger input
    assert "&quot;size&quot;: &quot;big&quot;" in body  # result and step output
    assert "→ true" in body  # the port the branch took
    assert "<code>small</code>" in body and "Skipped" in body
    assert f'data-live-run="{run.id}"' in body and 'data-live-active="false"' in body
    assert body.count('class="step-bar"') >= 2  # executed steps on the run's timeline
    editor = reverse("flows:editor", kwargs={"workspace_slug": "acme", "flow_id": good_flow.id})
    assert f'href="{editor}"' in body  # back to the flow
    failed = execute(broken_flow, {})
    body = builder_client.get(url("detail", run_id=failed.id)).content.decode()
    assert "trigger.body.missing.deep" in body  # the failing expression
    assert "Retry from failed step" in body


def test_reviewer_watches_runs_but_cannot_change_them(reviewer_client, broken_flow):
    failed = execute(broken_flow, {})
    response = reviewer_client.get(url("detail", run_id=failed.id))
    assert response.status_code == 200 and b"Retry from failed step" not in response.content
    assert reviewer_client.post(url("retry", run_id=failed.id)).status_code == 403
    assert reviewer_client.post(url("cancel", run_id=failed.id)).status_code == 403
    bulk = reviewer_client.post(url("bulk"), {"action": "retry", "runs": [str(failed.id)]})
    assert bulk.status_code == 403


def test_another_workspace_sees_nothing(outsider_client, good_flow):
    run = execute(good_flow, {"amount": 1})
    assert outsider_client.get(url("list")).status_code == 404
    assert outsider_client.get(url("detail", run_id=run.id)).status_code == 404
    own = reverse("runs:detail", kwargs={"workspace_slug": "globex", "run_id": run.id})
    assert outsider_client.get(own).status_code == 404
    own_cancel = reverse("runs:cancel", kwargs={"workspace_slug": "globex", "run_id": run.id})
    assert outsider_client.post(own_cancel).status_code == 404
    bulk = reverse("runs:bulk", kwargs={"workspace_slug": "globex"})
    outsider_client.post(bulk, {"action": "rerun", "runs": [str(run.id)]})
    assert Run.objects.filter(rerun_of=run).count() == 0


def test_cancel_a_waiting_run(builder_client, workspace, builder_user):
    flow = published_flow(workspace, builder_user, WAITS)
    run = execute(flow, {})
    assert run.status == "waiting"
    assert b"Cancel run" in builder_client.get(url("detail", run_id=run.id)).content
    response = builder_client.post(url("cancel", run_id=run.id), follow=True)
    run.refresh_from_db()
    assert run.status == "cancelled"
    assert b"Run cancelled." in response.content
    again = builder_client.post(url("cancel", run_id=run.id), follow=True)
    assert b"already cancelled" in again.content


def test_rerun_links_the_new_run_to_the_original(builder_client, good_flow):
    run = execute(good_flow, {"amount": 1})
    response = builder_client.post(url("rerun", run_id=run.id))
    rerun = Run.objects.get(rerun_of=run)
    assert response.status_code == 302 and response["Location"] == url("detail", run_id=rerun.id)
    assert str(run.id)[:8] in builder_client.get(url("detail", run_id=rerun.id)).content.decode()
    assert str(rerun.id)[:8] in builder_client.get(url("detail", run_id=run.id)).content.decode()


def test_dead_letter_lists_failed_runs_only(builder_client, good_flow, broken_flow):
    ok = execute(good_flow, {"amount": 1})
    failed = execute(broken_flow, {})
    body = builder_client.get(url("dead_letter")).content.decode()
    assert f'value="{failed.id}"' in body and str(ok.id) not in body
    assert "data-select-all" in body and "Re-run on latest version" in body


def test_bulk_retry_and_rerun_are_executed_by_a_real_worker(
    builder_client, builder_user, broken_flow, celery_worker
):
    failed = [execute(broken_flow, {}) for _ in range(2)]
    ids = [str(run.id) for run in failed]

    response = builder_client.post(url("bulk"), {"action": "retry", "runs": ids}, follow=True)
    assert b"Retried 2 runs." in response.content

    def retried_by_worker() -> bool:
        return all(
            StepRun.objects.filter(run_id=run_id, node_id="calc", attempt=2, status="failed")
            .exclude(finished_at=None)
            .exists()
            for run_id in ids
        )

    wait_for(retried_by_worker)  # the failed step got a new attempt, executed by the worker
    wait_for(lambda: Run.objects.filter(pk__in=ids, status="failed").count() == 2)

    flow_publish(flow=broken_flow, actor=builder_user, note="fix calc", definition=FIXED)
    response = builder_client.post(url("bulk"), {"action": "rerun", "runs": ids}, follow=True)
    assert b"Re-ran 2 runs." in response.content
    wait_for(
        lambda: (
            Run.objects.filter(rerun_of_id__in=ids, status="succeeded", version__number=2).count()
            == 2
        )
    )


def test_step_timeline_places_each_step_by_its_start_and_duration():
    from datetime import datetime, timedelta
    from types import SimpleNamespace

    from apps.runs.selectors import step_timeline

    start = datetime(2026, 1, 1, 12, 0, 0)
    steps = [
        SimpleNamespace(pk=1, started_at=start, finished_at=start + timedelta(seconds=1)),
        SimpleNamespace(pk=2, started_at=start + timedelta(seconds=1), finished_at=start + timedelta(seconds=4)),
        SimpleNamespace(pk=3, started_at=None, finished_at=None),
    ]  # fmt: skip

    timeline = step_timeline(steps)

    assert timeline == {1: {"offset": 0.0, "width": 25.0}, 2: {"offset": 25.0, "width": 75.0}}


def test_a_builder_runs_a_published_flow_from_the_flows_list_with_json_input(
    builder_client, reviewer_client, good_flow, builder_user
):
    listing = builder_client.get(reverse("flows:list", kwargs={"workspace_slug": "acme"}))
    start = url("start", flow_id=good_flow.id)
    assert f'action="{start}"'.encode() in listing.content and b"Run\xe2\x80\xa6" in listing.content

    response = builder_client.post(start, {"input": '{"amount": 250}'}, follow=True)
    run = Run.objects.get(flow=good_flow)
    assert response.redirect_chain[-1][0] == url("detail", run_id=run.id)
    assert b"Started a run of Claims triage v1." in response.content
    assert (run.trigger, run.input["body"], run.requested_by) == (
        "manual",
        {"amount": 250},
        builder_user,
    )

    refused = builder_client.post(start, {"input": '{"amount": '}, follow=True)
    assert b"Claims triage was not started: it is not valid JSON" in refused.content
    assert Run.objects.filter(flow=good_flow).count() == 1

    # Reviewers watch runs; they do not start them.
    assert (
        b"Run\xe2\x80\xa6"
        not in reviewer_client.get(reverse("flows:list", kwargs={"workspace_slug": "acme"})).content
    )
    assert reviewer_client.post(start, {"input": "{}"}).status_code == 403
