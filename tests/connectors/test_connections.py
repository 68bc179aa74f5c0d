"""Connections: secrets encrypted at rest, key rotation, write-only secrets, the blocks'
service, and connector.http authenticating with a connection."""

from __future__ import annotations

import pytest
from django.db import connection as db

from apps.audit.models import AuditEvent
from apps.blocks.base import BlockError
from apps.connectors.crypto import SecretsUnreadable, decrypt_secrets
from apps.connectors.models import Connection
from apps.connectors.services import (
    ConnectionInvalid,
    WorkspaceConnections,
    connection_create,
    connection_keys_rotate,
    connection_secret_names,
    connection_update,
)
from apps.flows.services import flow_create
from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.models import StepRun
from apps.runs.services import run_start
from tests.runs.helpers import definition, node, published_flow
from tests.support.http_server import CountingServer

SECRET = "tok-7f3a9c1e-very-secret"


def api_connection(workspace, actor, **config):
    return connection_create(
        workspace=workspace,
        actor=actor,
        name="billing-api",
        type="http_api",
        config={"auth": "bearer", **config},
        secrets={"token": SECRET},
    )


@pytest.mark.django_db
def test_the_database_row_holds_no_plaintext_secret(workspace, admin_user):
    created = api_connection(workspace, admin_user)
    with db.cursor() as cursor:
        cursor.execute("SELECT * FROM connectors_connection WHERE id = %s", [created.pk])
        row = cursor.fetchone()
    assert SECRET not in repr(row)
    assert created.secrets_encrypted.startswith("gAAAA")  # a Fernet token
    assert decrypt_secrets(created.secrets_encrypted) == {"token": SECRET}
    audit = AuditEvent.objects.get(action="connection.create")
    assert SECRET not in repr(audit.data) and audit.data["secrets_set"] == ["token"]


@pytest.mark.django_db
def test_a_retired_key_still_reads_and_rotation_moves_to_the_new_key(
    workspace, admin_user, settings
):
    created = api_connection(workspace, admin_user)
    old_key = settings.FLOWGATE["ENCRYPTION_KEY"]
    settings.FLOWGATE = {
        **settings.FLOWGATE,
        "ENCRYPTION_KEY": "a-brand-new-key",
        "RETIRED_ENCRYPTION_KEYS": [old_key],
    }
    assert decrypt_secrets(created.secrets_encrypted) == {"token": SECRET}
    assert connection_keys_rotate() == 1
    rotated = Connection.objects.get(pk=created.pk).secrets_encrypted
    assert rotated != created.secrets_encrypted
    settings.FLOWGATE = {**settings.FLOWGATE, "RETIRED_ENCRYPTION_KEYS": []}
    assert decrypt_secrets(rotated) == {"token": SECRET}
    with pytest.raises(SecretsUnreadable):
        decrypt_secrets(created.secrets_encrypted)  # only the old key opened this


@pytest.mark.django_db
def test_a_blank_secret_on_update_keeps_the_stored_one(workspace, admin_user):
    created = api_connection(workspace, admin_user)
    connection_update(
        connection=created,
        actor=admin_user,
        config={"auth": "basic", "username": "u"},
        secrets={"token": "", "password": "pw"},
    )
    assert decrypt_secrets(created.secrets_encrypted) == {"token": SECRET, "password": "pw"}
    connection_update(connection=created, actor=admin_user, clear_secrets=("token",))
    assert connection_secret_names(created) == ["password"]


@pytest.mark.django_db
def test_bad_settings_and_duplicate_names_are_refused(workspace, admin_user):
    with pytest.raises(ConnectionInvalid) as error:
        connection_create(
            workspace=workspace,
            actor=admin_user,
            name="x",
            type="http_api",
            config={"auth": "magic"},
            secrets={},
        )
    assert "auth" in error.value.fields
    with pytest.raises(ConnectionInvalid):
        connection_create(
            workspace=workspace,
            actor=admin_user,
            name="x",
            type="no-such-type",
            config={},
            secrets={},
        )
    api_connection(workspace, admin_user)
    with pytest.raises(ConnectionInvalid) as error:
        api_connection(workspace, admin_user)
    assert "name" in error.value.fields


@pytest.mark.django_db
def test_blocks_see_only_their_workspace_connections(workspace, other_workspace, admin_user):
    api_connection(workspace, admin_user)
    handle = WorkspaceConnections(workspace.id).get("billing-api", type="http_api")
    assert handle.secret("token") == SECRET and SECRET not in repr(handle)
    with pytest.raises(BlockError, match="no connection named 'billing-api'"):
        WorkspaceConnections(other_workspace.id).get("billing-api")
    with pytest.raises(BlockError, match="is a http_api connection; this block needs smtp"):
        WorkspaceConnections(workspace.id).get("billing-api", type="smtp")


def _http_flow(url: str, connection: str) -> dict:
    return definition(
        [
            node("start", "trigger.manual"),
            node("call", "connector.http", method="POST", url=url, connection=connection),
        ],
        [("start", "call")],
    )


@pytest.mark.django_db(transaction=True)
def test_connector_http_authenticates_with_the_named_connection(workspace, admin_user, settings):
    settings.FLOWGATE = {**settings.FLOWGATE, "SSRF_ALLOWLIST": ["127.0.0.1"]}
    with CountingServer() as server:
        connection_create(
            workspace=workspace,
            actor=admin_user,
            name="keyed",
            type="http_api",
            config={"auth": "header", "header_name": "X-Shop-Key", "base_url": server.url},
            secrets={"api_key": SECRET},
        )
        flow = published_flow(workspace, admin_user, _http_flow("/orders", "keyed"))
        run = run_start(flow=flow, trigger="manual", payload=envelope({}), enqueue=False).run
        advance(run.id)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    [request] = server.requests
    assert request["path"] == "/orders" and request["headers"]["X-Shop-Key"] == SECRET
    step = StepRun.objects.get(run=run, node_id="call")
    assert SECRET not in repr(step.output) and SECRET not in repr(step.input)


@pytest.mark.django_db(transaction=True)
def test_a_dry_run_masks_connection_headers_of_any_name(workspace, admin_user, settings):
    connection_create(
        workspace=workspace,
        actor=admin_user,
        name="keyed",
        type="http_api",
        config={"auth": "header", "header_name": "X-Shop", "base_url": "https://example.com"},
        secrets={"api_key": SECRET},
    )
    flow = published_flow(workspace, admin_user, _http_flow("https://example.com/x", "keyed"))
    run = run_start(
        flow=flow,
        trigger="test",
        payload=envelope({}),
        enqueue=False,
        dry_run=True,
        draft_definition=flow.draft_definition,
    ).run
    advance(run.id)
    step = StepRun.objects.get(run=run, node_id="call")
    assert step.output["request"]["headers"]["X-Shop"] == "••••••"
    assert SECRET not in repr(step.output)


@pytest.mark.django_db(transaction=True)
def test_an_unknown_connection_fails_the_step_with_a_clear_message(workspace, admin_user):
    # Publishing refuses a missing connection (pre-flight); a test run of the draft meets it.
    calling = _http_flow("https://example.com/", "missing")
    flow = flow_create(workspace=workspace, actor=admin_user, name="Caller", definition=calling)
    run = run_start(
        flow=flow, trigger="manual", payload=envelope({}), draft_definition=calling, enqueue=False
    ).run
    advance(run.id)
    run.refresh_from_db()
    assert run.status == "failed"
    assert "no connection named 'missing'" in run.error["message"]


@pytest.mark.django_db
def test_the_demo_seed_adds_its_connections_once_and_they_work(workspace, admin_user):
    from apps.connectors.demo import demo_connections_ensure
    from apps.connectors.services import connection_test

    demo_connections_ensure(workspace=workspace, actor=admin_user)
    demo_connections_ensure(workspace=workspace, actor=admin_user)
    connections = {c.name: c for c in Connection.objects.filter(workspace=workspace)}
    assert {name: c.type for name, c in connections.items()} == {
        "demo-events": "redis",
        "demo-ledger": "postgres",
        "demo-mail": "smtp",  # the studio's mail sink, which tests do not run
    }
    assert connection_test(connection=connections["demo-events"]).ok
    assert connection_test(connection=connections["demo-ledger"]).ok


@pytest.mark.django_db
def test_the_rotate_keys_command_reencrypts_under_the_current_key(workspace, admin_user, settings):
    from io import StringIO

    from django.core.management import CommandError, call_command

    created = api_connection(workspace, admin_user)
    old_key = settings.FLOWGATE["ENCRYPTION_KEY"]
    settings.FLOWGATE = {**settings.FLOWGATE, "ENCRYPTION_KEY": "next-key"}
    with pytest.raises(CommandError, match="RETIRED_ENCRYPTION_KEYS"):
        call_command("connections", "rotate-keys")  # the old key is not configured at all
    settings.FLOWGATE = {**settings.FLOWGATE, "RETIRED_ENCRYPTION_KEYS": [old_key]}
    output = StringIO()
    call_command("connections", "rotate-keys", stdout=output)
    assert "1 connection(s)" in output.getvalue()
    settings.FLOWGATE = {**settings.FLOWGATE, "RETIRED_ENCRYPTION_KEYS": []}
    rotated = Connection.objects.get(pk=created.pk).secrets_encrypted
    assert decrypt_secrets(rotated) == {"token": SECRET}
