"""The audit trail pages: filters, chain verification (button and command), streaming
exports, decision explanations, and who may see them."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.audit.sealing import audit_seal
from apps.audit.services import audit_record
from apps.runs.blocks import envelope
from apps.runs.services import run_start
from tests.audit.helpers import policy_routed_run
from tests.runs.helpers import definition, node, published_flow

pytestmark = pytest.mark.django_db(transaction=True)


def url(name, **kwargs):
    return reverse(f"audit:{name}", kwargs={"workspace_slug": "acme", **kwargs})


@pytest.fixture
def trail(workspace, admin_user):
    audit_record(
        workspace_id=workspace.id,
        action="flow.published",
        actor=admin_user,
        object_type="flow",
        object_id="f-1",
        summary="published Claims v1",
    )
    audit_record(
        workspace_id=workspace.id,
        action="run.cancelled",
        actor_label="system",
        object_type="run",
        object_id="3f2b7c1e-0000-4000-8000-000000000000",
        summary="=HYPERLINK(evil) cancelled a run",
    )
    audit_record(
        workspace_id=workspace.id,
        action="decision.policy",
        actor_label="system",
        object_type="run",
        object_id="3f2b7c1e-0000-4000-8000-000000000001",
        summary="policy.evaluate at route took 'approve'",
        data={"node": "route", "input": {"amount": 5}},
    )
    audit_seal()  # as the sealer does within a second


def test_admin_sees_the_trail_and_filters_it(admin_client, trail, django_assert_max_num_queries):
    with django_assert_max_num_queries(9):
        body = admin_client.get(url("list")).content.decode()
    assert "published Claims v1" in body and "cancelled a run" in body
    assert "decisions/3f2b7c1e-0000-4000-8000-000000000001/route/" in body  # "explain" link
    by_actor = admin_client.get(url("list"), {"actor": "ada"}).content.decode()
    assert "published Claims v1" in by_actor and "cancelled a run" not in by_actor
    by_action = admin_client.get(url("list"), {"action": "decision"}).content.decode()
    assert "took &#x27;approve&#x27;" in by_action and "published Claims" not in by_action
    by_object = admin_client.get(url("list"), {"object": "flow"}).content.decode()
    assert "published Claims v1" in by_object and "cancelled a run" not in by_object
    future = admin_client.get(url("list"), {"since": "2999-01-01"}).content.decode()
    assert "No events match" in future


def test_only_admins_of_the_workspace_see_the_trail(builder_client, outsider_client, trail):
    assert builder_client.get(url("list")).status_code == 403
    assert builder_client.post(url("verify")).status_code == 403
    assert builder_client.get(url("export_csv")).status_code == 403
    assert outsider_client.get(url("list")).status_code == 404
    assert outsider_client.get(url("export_jsonl")).status_code == 404
    assert outsider_client.post(url("verify")).status_code == 404


def test_verify_button_reports_an_intact_chain(admin_client, trail):
    response = admin_client.post(url("verify"), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert b'data-verify="ok"' in response.content and b"3 events checked" in response.content


def test_verify_button_names_the_tampered_record(admin_client, workspace, trail):
    AuditEvent.objects.filter(workspace=workspace, sequence=2).update(summary="nothing happened")
    response = admin_client.post(url("verify"), HTTP_HX_REQUEST="true")
    assert b'data-verify="broken"' in response.content
    assert b"Tampering detected at event #2" in response.content
    assert b"the event was altered" in response.content
    full_page = admin_client.post(url("verify"))
    assert b"Tampering detected at event #2" in full_page.content and b"<html" in full_page.content


def test_verify_detects_a_deleted_record(admin_client, workspace, trail):
    AuditEvent.objects.filter(workspace=workspace, sequence=2).delete()
    response = admin_client.post(url("verify"), HTTP_HX_REQUEST="true")
    assert b"Tampering detected at event #2" in response.content
    assert b"an event is missing" in response.content


def test_audit_verify_command_exits_non_zero_on_tampering(workspace, trail):
    out = io.StringIO()
    call_command("audit", "verify", "--workspace", "acme", stdout=out)
    assert "acme: ok, 3 events" in out.getvalue()
    AuditEvent.objects.filter(workspace=workspace, sequence=3).update(data={"node": "forged"})
    with pytest.raises(CommandError, match="broken in acme"):
        call_command("audit", "verify", stdout=out)
    assert "TAMPERED at event #3" in out.getvalue()


def test_exports_stream_the_filtered_trail(admin_client, trail):
    response = admin_client.get(url("export_jsonl"), {"action": "decision"})
    assert response.streaming and response["Content-Type"].startswith("application/jsonl")
    lines = b"".join(response.streaming_content).decode().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["action"] for r in records] == ["decision.policy"]
    assert records[0]["data"] == {"input": {"amount": 5}, "node": "route"}
    assert len(records[0]["digest"]) == 64

    response = admin_client.get(url("export_csv"))
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["sequence", "created_at", "actor", "action"]
    assert len(rows) == 4
    summaries = [row[6] for row in rows[1:]]
    assert "'=HYPERLINK(evil) cancelled a run" in summaries  # no formula injection


def test_decision_page_explains_a_policy_step(
    workspace, admin_user, builder_client, reviewer_client, outsider_client
):
    run = policy_routed_run(
        workspace,
        admin_user,
        policy_input={"amount": "trigger.body.amount", "api_token": "'s3cr3t'"},
        body={"amount": 5},
    )
    assert run.status == "succeeded"

    detail = builder_client.get(
        reverse("runs:detail", kwargs={"workspace_slug": "acme", "run_id": run.id})
    )
    decision_url = url("decision", run_id=run.id, node_id="route")
    assert decision_url in detail.content.decode()

    body = builder_client.get(decision_url).content.decode()
    assert "took “approve”" in body
    policy_version = run.steps.get(node_id="route").meta["policy_version"]
    assert policy_version and str(policy_version) in body  # the policy's version
    assert ">Limits v1</a>" in body  # ... named as people know it, linked to the policy
    assert "Decided automatically" in body
    assert "s3cr3t" not in body  # the recorded input is redacted
    assert reviewer_client.get(decision_url).status_code == 200
    assert outsider_client.get(decision_url).status_code == 404
    assert builder_client.get(url("decision", run_id=run.id, node_id="start")).status_code == 404


def test_decision_page_names_the_reviewer_of_a_human_decision(
    workspace, builder_user, reviewer_user, admin_client
):
    from apps.accounts.models import Membership
    from apps.inbox.services import task_decide
    from tests.inbox.helpers import finish_inline, start_waiting_run, task_of

    run = start_waiting_run(workspace, builder_user)
    task_decide(
        task=task_of(run),
        actor=reviewer_user,
        membership=Membership.objects.get(user=reviewer_user, workspace=workspace),
        decision="approve",
        comment="Receipts check out",
    )
    run = finish_inline(run)
    assert run.status == "succeeded"
    body = admin_client.get(url("decision", run_id=run.id, node_id="review")).content.decode()
    assert "A human decision" in body and "took “approved”" in body
    assert "Receipts check out" in body
    reviewer = body.split("<h2>Reviewer</h2>")[1].split("</section>")[0]
    assert "rui" in reviewer.lower()
    assert "Decided automatically" not in body
    task_page = admin_client.get(
        reverse("inbox:detail", kwargs={"workspace_slug": "acme", "task_id": task_of(run).id})
    ).content.decode()
    assert url("decision", run_id=run.id, node_id="review") in task_page


def test_decision_page_shows_the_model_and_its_version(workspace, builder_user, builder_client):
    flow = published_flow(
        workspace,
        builder_user,
        definition([node("start", "trigger.manual")], []),
    )
    run = run_start(flow=flow, trigger="manual", payload=envelope({}), enqueue=False).run
    audit_record(  # what the engine records after a model.predict step
        workspace_id=workspace.id,
        action="decision.model",
        object_type="run",
        object_id=run.id,
        summary="model.predict at score took 'out'",
        data={
            "node": "score",
            "block": "model.predict",
            "port": "out",
            "input": {"amount": 9000},
            "result": {"label": "fraud", "score": 0.91},
            "meta": {"model": "claim-fraud", "model_version": "2", "model_alias": "production"},
        },
    )
    body = builder_client.get(url("decision", run_id=run.id, node_id="score")).content.decode()
    assert "A model decision" in body
    model = body.split("<h2>Model</h2>")[1].split("</section>")[0]
    assert "claim-fraud" in model and ">2<" in model and "production" in model
    assert "No policy was evaluated in this step" in body
