"""The tasks REST API: list, counts, detail, decide; errors in the standard body."""

from __future__ import annotations

from apps.audit.models import AuditEvent
from tests.inbox.helpers import finish_inline, start_waiting_run, task_of

BASE = "/api/w/acme/tasks/"


def test_the_list_and_counts_show_open_tasks_for_the_reviewer(
    workspace, builder_user, reviewer_client, django_assert_max_num_queries
):
    run = start_waiting_run(workspace, builder_user)
    for number in range(3):
        start_waiting_run(
            workspace, builder_user, {"claim": f"D-{number}", "amount": 1, "customer": "x"}
        )
    with django_assert_max_num_queries(6):  # however many tasks: no query per task
        everything = reviewer_client.get(BASE).json()
    assert everything["view"] == "mine" and len(everything["results"]) == 4
    listed = reviewer_client.get(BASE + "?q=C-17").json()
    assert [task["title"] for task in listed["results"]] == ["Claim C-17"]
    assert listed["results"][0]["run"] == str(run.id)
    assert reviewer_client.get(BASE + "counts/").json() == {"mine": 4, "team": 4, "overdue": 0}


def test_a_reviewer_cannot_list_all_but_an_admin_can(
    workspace, builder_user, reviewer_client, admin_client
):
    start_waiting_run(workspace, builder_user, assignees={"role": "admin"})
    assert reviewer_client.get(BASE + "?view=all").json() == {"view": "mine", "results": []}
    assert len(admin_client.get(BASE + "?view=all").json()["results"]) == 1


def test_the_detail_shows_the_case_and_the_form(workspace, builder_user, reviewer_client):
    run = start_waiting_run(
        workspace, builder_user, form=[{"name": "reason", "type": "text", "required": True}]
    )
    detail = reviewer_client.get(f"{BASE}{task_of(run).id}/").json()
    assert detail["data"] == {"Amount": 1250, "Customer": "<b>Wile E.</b>"}
    assert detail["form"][0]["name"] == "reason"
    assert detail["status"] == "open" and detail["version"] == 1


def test_deciding_resumes_the_run_and_a_second_decision_is_a_409(
    workspace, builder_user, reviewer_client, admin_client
):
    run = start_waiting_run(workspace, builder_user)
    url = f"{BASE}{task_of(run).id}/decide/"
    decided = reviewer_client.post(
        url, {"decision": "approve", "comment": "ok", "version": 1}, content_type="application/json"
    )
    assert decided.status_code == 200
    assert decided.json()["status"] == "approved"
    again = admin_client.post(
        url, {"decision": "reject", "comment": "late"}, content_type="application/json"
    )
    assert again.status_code == 409
    assert again.json() == {
        "error": {"code": "conflict", "message": "This task was already approved."}
    }
    assert finish_inline(run).output == {"paid": True, "by": "rui"}


def test_required_form_fields_and_comments_are_validated(workspace, builder_user, reviewer_client):
    run = start_waiting_run(
        workspace, builder_user, form=[{"name": "reason", "type": "text", "required": True}]
    )
    url = f"{BASE}{task_of(run).id}/decide/"
    missing = reviewer_client.post(url, {"decision": "approve"}, content_type="application/json")
    assert missing.status_code == 400
    assert missing.json()["error"]["fields"] == {"reason": "This field is required."}
    no_comment = reviewer_client.post(url, {"decision": "reject"}, content_type="application/json")
    assert no_comment.status_code == 400
    unknown = reviewer_client.post(url, {"decision": "maybe"}, content_type="application/json")
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "invalid"
    assert task_of(run).status == "open"


def test_a_builder_gets_403_and_another_workspace_404(
    workspace, admin_user, builder_client, outsider_client
):
    run = start_waiting_run(workspace, admin_user)
    task = task_of(run)
    body = {"decision": "approve"}
    forbidden = builder_client.post(
        f"{BASE}{task.id}/decide/", body, content_type="application/json"
    )
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["message"] == "Your role (builder) cannot do this."
    assert outsider_client.get(f"{BASE}{task.id}/").status_code == 404
    assert outsider_client.get(f"/api/w/globex/tasks/{task.id}/").status_code == 404
    elsewhere = outsider_client.post(
        f"/api/w/globex/tasks/{task.id}/decide/", body, content_type="application/json"
    )
    assert elsewhere.status_code == 404
    assert task_of(run).status == "open"


def test_the_requester_gets_403_with_the_reason(workspace, admin_user, admin_client):
    run = start_waiting_run(workspace, admin_user)
    response = admin_client.post(
        f"{BASE}{task_of(run).id}/decide/", {"decision": "approve"}, content_type="application/json"
    )
    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "forbidden",
        "message": "You requested this case, so you cannot decide it.",
    }


def test_claim_and_release(workspace, builder_user, reviewer_client):
    run = start_waiting_run(workspace, builder_user)
    task = task_of(run)
    url = f"{BASE}{task.id}/"
    assert reviewer_client.post(url + "claim/").json()["claimed_by"] == "rui"
    assert reviewer_client.post(url + "release/").json()["claimed_by"] is None
    # Who held the case, and when, is in the audit trail.
    trail = AuditEvent.objects.filter(object_id=str(task.id), action__startswith="task.")
    assert [(e.action, e.actor.username) for e in trail.order_by("appended")] == [
        ("task.claimed", "rui"),
        ("task.released", "rui"),
    ]
    assert trail.get(action="task.released").summary.startswith("released Rui's claim")
