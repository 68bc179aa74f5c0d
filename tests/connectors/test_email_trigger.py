"""trigger.email: inbound email posted to the flow's webhook URL by a mail service, as JSON
(Postmark style) or as a multipart form (SendGrid / Mailgun style)."""

from __future__ import annotations

import base64
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.runs.engine import advance
from apps.runs.models import Run, StepRun
from tests.runs.helpers import definition, node, published_flow

pytestmark = pytest.mark.django_db(transaction=True)

FLOW = definition(
    [
        node("mail", "trigger.email"),
        node(
            "ticket",
            "transform.set",
            values={
                "customer": "trigger.body.from",
                "subject": "trigger.body.subject",
                "files": "size(trigger.body.attachments)",
            },
        ),
    ],
    [("mail", "ticket")],
)


def deliver(client, flow, **post) -> Run:
    response = client.post(f"/hooks/{flow.webhook_token}", **post)
    assert response.status_code == 202, response.content
    run = Run.objects.get(pk=response["X-Flowgate-Run"])
    advance(run.id)
    run.refresh_from_db()
    return run


def test_a_postmark_style_json_email_starts_a_run(client, workspace, builder_user):
    flow = published_flow(workspace, builder_user, FLOW)
    email = {
        "From": "Cleo <cleo@example.com>",
        "To": "support@acme.test",
        "Subject": "Broken invoice",
        "TextBody": "The total is wrong.",
        "MessageID": "abc-123",
        "Attachments": [
            {
                "Name": "invoice.pdf",
                "ContentType": "application/pdf",
                "Content": base64.b64encode(b"%PDF-1.4").decode(),
            }
        ],
    }
    run = deliver(client, flow, data=json.dumps(email), content_type="application/json")
    assert run.status == "succeeded", run.error
    mail = StepRun.objects.get(run=run, node_id="mail").output["body"]
    assert mail["from"] == "cleo@example.com" and mail["from_name"] == "Cleo"
    assert mail["to"] == ["support@acme.test"] and mail["text"] == "The total is wrong."
    assert mail["attachments"][0] | {"content": None} == {
        "filename": "invoice.pdf",
        "content_type": "application/pdf",
        "size": 8,
        "content": None,
    }
    assert StepRun.objects.get(run=run, node_id="ticket").output == {
        "customer": "cleo@example.com",
        "subject": "Broken invoice",
        "files": 1,
    }


def test_a_multipart_form_email_starts_a_run(client, workspace, builder_user):
    flow = published_flow(workspace, builder_user, FLOW)
    run = deliver(
        client,
        flow,
        data={
            "from": "Dan <dan@example.com>",
            "to": "support@acme.test, help@acme.test",
            "subject": "Refund",
            "text": "Please refund order 7.",
            "attachment1": SimpleUploadedFile("note.txt", b"order 7", content_type="text/plain"),
        },
    )
    assert run.status == "succeeded", run.error
    mail = StepRun.objects.get(run=run, node_id="mail").output["body"]
    assert mail["from"] == "dan@example.com" and mail["subject"] == "Refund"
    assert mail["to"] == ["support@acme.test", "help@acme.test"]
    assert mail["text"] == "Please refund order 7."
    assert mail["attachments"] == [
        {"filename": "note.txt", "content_type": "text/plain", "size": 7, "content": None}
    ]


def test_a_body_that_is_no_email_fails_the_step_with_a_reason(client, workspace, builder_user):
    flow = published_flow(workspace, builder_user, FLOW)
    run = deliver(client, flow, data="just text", content_type="text/plain")
    assert run.status == "failed"
    assert "cannot read an email from a text/plain body" in run.error["message"]
