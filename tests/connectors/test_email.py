"""connector.email.send against a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import base64

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from apps.connectors.services import connection_create, connection_test
from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.models import Run, StepRun
from apps.runs.services import run_start
from tests.runs.helpers import definition, node, published_flow
from tests.support.processes import free_port
from tests.support.smtp import smtp_server as real_smtp_server

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "smtp-pass-9d8e7f"


def _authenticate(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (
        auth_data.login == b"mailer" and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)  # the server answers 235 or 535


@pytest.fixture
def smtp_server():
    # Loopback test server; production connections use TLS.
    with real_smtp_server(authenticator=_authenticate, auth_require_tls=False) as server:
        yield server


@pytest.fixture
def mailer(workspace, admin_user, smtp_server):
    controller, _ = smtp_server
    return connection_create(
        workspace=workspace,
        actor=admin_user,
        name="mailer",
        type="smtp",
        config={
            "host": "127.0.0.1",
            "port": controller.port,
            "security": "none",
            "username": "mailer",
            "from_address": "Flowgate <noreply@acme.test>",
        },
        secrets={"password": PASSWORD},
    )


def send_flow(**config) -> dict:
    settings = {
        "connection": "mailer",
        "to": ["{{ trigger.body.customer }}"],
        "subject": "Re: ticket {{ trigger.body.ticket }}",
        "text": "Hello {{ trigger.body.name }}, we are on it.",
        **config,
    }
    return definition(
        [node("start", "trigger.manual"), node("mail", "connector.email.send", **settings)],
        [("start", "mail")],
    )


def run_flow(workspace, actor, flow_definition, body, **kwargs) -> tuple[Run, StepRun]:
    flow = published_flow(workspace, actor, flow_definition)
    options = {"trigger": "manual", **kwargs}
    if kwargs.get("dry_run"):
        options.update(trigger="test", draft_definition=flow.draft_definition)
    run = run_start(flow=flow, payload=envelope(body), enqueue=False, **options).run
    advance(run.id)
    run.refresh_from_db()
    return run, StepRun.objects.filter(run=run, node_id="mail").order_by("-attempt").first()


BODY = {"customer": "Cleo <cleo@example.com>", "ticket": 42, "name": "Cleo"}


def test_an_email_is_delivered_with_a_message_id_from_run_and_node(
    workspace, admin_user, smtp_server, mailer
):
    _, mailbox = smtp_server
    run, step = run_flow(
        workspace,
        admin_user,
        send_flow(
            cc=["boss@acme.test"],
            html="<p>Hello <b>{{ trigger.body.name }}</b></p>",
            attachments=[
                {
                    "filename": "ticket-{{ trigger.body.ticket }}.json",
                    "content": "string(trigger.body.ticket)",
                },
                {
                    "filename": "logo.png",
                    "content": f"'{base64.b64encode(b'PNG-bytes').decode()}'",
                    "encoding": "base64",
                    "content_type": "image/png",
                },
            ],
        ),
        BODY,
    )
    assert run.status == "succeeded", run.error
    [(sender, recipients, message)] = mailbox.messages
    assert sender == "noreply@acme.test"
    assert recipients == ["cleo@example.com", "boss@acme.test"]
    assert message["Subject"] == "Re: ticket 42"
    assert message["Message-ID"] == step.output["message_id"]
    assert message["Message-ID"].startswith(f"<{message['X-Flowgate-Idempotency-Key']}@acme.test")
    assert message.get_body(("plain",)).get_content().strip() == "Hello Cleo, we are on it."
    assert "<b>Cleo</b>" in message.get_body(("html",)).get_content()
    attachments = {part.get_filename(): part.get_content() for part in message.iter_attachments()}
    assert attachments == {"ticket-42.json": "42\n", "logo.png": b"PNG-bytes"} or attachments == {
        "ticket-42.json": "42",
        "logo.png": b"PNG-bytes",
    }
    assert PASSWORD not in repr(step.output)


def test_a_dry_run_describes_the_message_and_sends_nothing(
    workspace, admin_user, smtp_server, mailer
):
    _, mailbox = smtp_server
    run, step = run_flow(workspace, admin_user, send_flow(), BODY, dry_run=True)
    assert run.status == "succeeded", run.error
    assert mailbox.messages == []
    assert step.output["dry_run"] is True
    assert step.output["to"] == ["cleo@example.com"]
    assert step.output["subject"] == "Re: ticket 42"
    assert step.output["text"] == "Hello Cleo, we are on it."


def test_wrong_credentials_say_authentication_failed(workspace, admin_user, smtp_server, mailer):
    from apps.connectors.services import connection_update

    _, mailbox = smtp_server
    connection_update(connection=mailer, actor=admin_user, secrets={"password": "wrong"})
    outcome = connection_test(connection=mailer)
    assert outcome.stage == "auth" and "authentication failed for mailer" in outcome.message
    run, _ = run_flow(workspace, admin_user, send_flow(), BODY)
    assert run.status == "failed"
    assert "authentication failed" in run.error["message"]
    assert "Traceback" not in run.error["message"] and mailbox.messages == []


def test_the_test_button_connects_and_names_a_refused_port(
    workspace, admin_user, smtp_server, mailer
):
    outcome = connection_test(connection=mailer)
    assert outcome.ok and "as mailer" in outcome.message
    closed = connection_create(
        workspace=workspace,
        actor=admin_user,
        name="closed",
        type="smtp",
        config={
            "host": "127.0.0.1",
            "port": free_port(),
            "security": "none",
            "from_address": "x@acme.test",
        },
        secrets={},
    )
    outcome = connection_test(connection=closed)
    assert outcome.stage == "refused" and "connection refused" in outcome.message


def test_a_plain_server_refuses_starttls_with_a_clear_message(workspace, admin_user, smtp_server):
    controller, _ = smtp_server
    tls = connection_create(
        workspace=workspace,
        actor=admin_user,
        name="tls",
        type="smtp",
        config={
            "host": "127.0.0.1",
            "port": controller.port,
            "security": "starttls",
            "from_address": "x@acme.test",
        },
        secrets={},
    )
    outcome = connection_test(connection=tls)
    assert outcome.stage == "tls" and "does not offer STARTTLS" in outcome.message


def test_a_header_injection_in_a_recipient_is_refused(workspace, admin_user, smtp_server, mailer):
    _, mailbox = smtp_server
    run, _ = run_flow(
        workspace, admin_user, send_flow(), {**BODY, "customer": "a@b.c\r\nBcc: evil@x.y"}
    )
    assert run.status == "failed" and "line break" in run.error["message"]
    assert mailbox.messages == []
