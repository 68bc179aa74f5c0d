"""The inbox pages: list, task, decisions through the web, permissions."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.inbox.models import ReviewTask
from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.models import Run, StepRun
from apps.runs.services import run_start
from tests.inbox.helpers import CLAIM, approval_flow, finish_inline, start_waiting_run, task_of
from tests.runs.helpers import published_flow
from tests.support.waiting import wait_for


def list_url(slug="acme"):
    return reverse("inbox:list", kwargs={"workspace_slug": slug})


def task_url(task, name="detail", slug="acme"):
    return reverse(f"inbox:{name}", kwargs={"workspace_slug": slug, "task_id": task.id})


@pytest.mark.django_db(transaction=True)
def test_a_reviewer_approves_on_the_web_and_the_worker_completes_the_run(
    workspace, builder_user, reviewer_client, celery_worker
):
    run = start_waiting_run(workspace, builder_user, enqueue=True)
    task = wait_for(lambda: ReviewTask.objects.filter(run=run).first())
    wait_for(lambda: Run.objects.get(pk=run.pk).status == "waiting")

    page = reviewer_client.get(list_url())
    assert page.status_code == 200
    assert "Claim C-17" in page.content.decode()

    detail = reviewer_client.get(task_url(task))
    html = detail.content.decode()
    assert "&lt;b&gt;Wile E.&lt;/b&gt;" in html and "<b>Wile E.</b>" not in html
    decided = reviewer_client.post(
        task_url(task, "decide"),
        {"decision": "approve", "comment": "Receipt checked", "version": task.version},
    )
    assert decided.status_code == 302

    run = wait_for(lambda: Run.objects.filter(pk=run.pk, status="succeeded").first())
    assert run.output == {"paid": True, "by": "rui"}
    review = StepRun.objects.get(run=run, node_id="review", status="succeeded")
    assert (review.port, review.output["comment"]) == ("approved", "Receipt checked")
    audit = AuditEvent.objects.get(action="decision.human", object_id=str(run.id))
    assert audit.actor_label == "rui" and audit.data["meta"]["decision"] == "approve"


def test_a_rejection_without_a_comment_is_refused_with_a_message(
    workspace, builder_user, reviewer_client
):
    run = start_waiting_run(workspace, builder_user)
    task = task_of(run)
    refused = reviewer_client.post(task_url(task, "decide"), {"decision": "reject"})
    assert refused.status_code == 400
    assert "A comment is required to reject" in refused.content.decode()
    assert task_of(run).status == "open"

    decided = reviewer_client.post(
        task_url(task, "decide"), {"decision": "reject", "comment": "Duplicate"}
    )
    assert decided.status_code == 302
    assert finish_inline(run).output == {"paid": False}


def test_a_second_decision_gets_a_409_and_a_clear_message(
    workspace, builder_user, reviewer_client, admin_client
):
    run = start_waiting_run(workspace, builder_user)
    task = task_of(run)
    assert (
        reviewer_client.post(task_url(task, "decide"), {"decision": "approve"}).status_code == 302
    )
    second = admin_client.post(task_url(task, "decide"), {"decision": "reject", "comment": "no"})
    assert second.status_code == 409
    assert "This task was already approved." in second.content.decode()
    assert task_of(run).decided_by.username == "rui"


def test_a_builder_sees_the_task_but_cannot_decide(workspace, admin_user, builder_client):
    run = start_waiting_run(workspace, admin_user)
    task = task_of(run)
    assert builder_client.get(task_url(task)).status_code == 200
    assert builder_client.post(task_url(task, "decide"), {"decision": "approve"}).status_code == 403
    assert task_of(run).status == "open"


def test_another_workspace_gets_404_for_the_task(workspace, builder_user, outsider_client):
    run = start_waiting_run(workspace, builder_user)
    task = task_of(run)
    assert outsider_client.get(task_url(task)).status_code == 404
    assert outsider_client.get(task_url(task, slug="globex")).status_code == 404
    decide = outsider_client.post(task_url(task, "decide", slug="globex"), {"decision": "approve"})
    assert decide.status_code == 404
    assert "Claim C-17" not in outsider_client.get(list_url("globex")).content.decode()
    assert task_of(run).status == "open"


def test_the_list_has_tabs_counts_and_an_htmx_fragment(
    workspace, builder_user, reviewer_client, django_assert_max_num_queries
):
    for number in range(3):
        start_waiting_run(
            workspace, builder_user, {"claim": f"C-{number}", "customer": "x", "amount": 10}
        )
    with django_assert_max_num_queries(12):
        page = reviewer_client.get(list_url())
    html = page.content.decode()
    assert html.count("data-task-row") == 3
    assert 'data-count="mine">3<' in html
    fragment = reviewer_client.get(list_url() + "?q=C-1", headers={"HX-Request": "true"})
    body = fragment.content.decode()
    assert "<html" not in body and body.count("data-task-row") == 1


def test_claiming_hides_the_task_from_other_reviewers_queue(
    workspace, builder_user, reviewer_client, admin_client
):
    run = start_waiting_run(workspace, builder_user, assignees={"role": "admin"})
    task = task_of(run)
    assert admin_client.post(task_url(task, "claim")).status_code == 302
    assert task_of(run).claimed_by.username == "ada"
    assert "Claim C-17" in admin_client.get(list_url()).content.decode()
    assert "Claim C-17" not in reviewer_client.get(list_url()).content.decode()


def test_bulk_approval_decides_each_selected_task(workspace, builder_user, reviewer_client):
    runs = [
        start_waiting_run(
            workspace, builder_user, {"claim": f"B-{n}", "customer": "x", "amount": 1}
        )
        for n in range(2)
    ]
    response = reviewer_client.post(
        reverse("inbox:bulk", kwargs={"workspace_slug": "acme"}),
        {"task": [str(task_of(run).id) for run in runs], "decision": "approve"},
    )
    assert response.status_code == 302
    assert {task_of(run).status for run in runs} == {"approved"}


def test_the_run_page_links_a_waiting_approval_to_its_task(workspace, builder_user, builder_client):
    run = start_waiting_run(workspace, builder_user)
    page = builder_client.get(
        reverse("runs:detail", kwargs={"workspace_slug": "acme", "run_id": run.id})
    )
    assert task_url(task_of(run)) in page.content.decode()


def test_metrics_show_the_inbox_backlog(workspace, builder_user, client):
    run = start_waiting_run(workspace, builder_user, due_in_hours=1)
    ReviewTask.objects.filter(run=run).update(due_at=run.created_at)
    start_waiting_run(workspace, builder_user, {"claim": "C-2", "customer": "x", "amount": 1})
    text = client.get("/metrics").content.decode()
    assert "flowgate_review_tasks_open 2.0" in text
    assert "flowgate_review_tasks_overdue 1.0" in text


@pytest.mark.django_db
def test_a_change_request_is_offered_only_where_the_flow_acts_on_it(
    workspace, builder_user, reviewer_client
):
    """Without a path from changes_requested, a request would end the run "succeeded" with
    nobody acting on it: the button is not there and the server refuses it."""
    flow = approval_flow(form=[{"name": "note", "label": "Note to the employee"}])
    flow["nodes"] = [item for item in flow["nodes"] if item["id"] != "rework"]
    flow["edges"] = [edge for edge in flow["edges"] if edge["to"] != "rework"]
    published = published_flow(workspace, builder_user, flow, name="Claims, no rework")
    run = run_start(flow=published, trigger="manual", payload=envelope(CLAIM), enqueue=False).run
    advance(run.id)
    task = task_of(run)

    page = reviewer_client.get(task_url(task)).content.decode()
    assert 'value="reject"' in page and 'value="request_changes"' not in page
    refused = reviewer_client.post(
        task_url(task, "decide"),
        {"decision": "request_changes", "comment": "Attach it", "field_note": "Typed by Rui"},
    )
    assert refused.status_code == 400
    assert "no path for a change request" in refused.content.decode()
    assert 'value="Typed by Rui"' in refused.content.decode()  # what was typed stays
    assert task_of(run).status == "open"

    # The flow with a rework path offers it.
    other = task_of(start_waiting_run(workspace, builder_user))
    assert 'value="request_changes"' in reviewer_client.get(task_url(other)).content.decode()


@pytest.mark.django_db
def test_a_list_in_the_case_is_shown_as_lines_not_as_json(workspace, builder_user, reviewer_client):
    run = start_waiting_run(
        workspace,
        builder_user,
        fields={
            "Reasons": "['over the travel limit', 'no receipt']",
            "Amount": "trigger.body.amount",
        },
    )
    html = reviewer_client.get(task_url(task_of(run))).content.decode()
    assert '<ul class="case-list"><li>over the travel limit</li><li>no receipt</li></ul>' in html
    assert "[&quot;over the travel limit&quot;" not in html
