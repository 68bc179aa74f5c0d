"""Settings → Egress: an admin's per-workspace allow-list, in the UI and the API, audited
(before → after), applied to the next call without a restart; builders cannot see or
change it; cloud metadata stays refused whatever it says."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.connectors.services import connection_create, connection_test, egress_settings_save
from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.services import run_start
from tests.runs.helpers import definition, node, published_flow
from tests.support.http_server import CountingServer

pytestmark = pytest.mark.django_db(transaction=True)

API = "/api/w/acme/settings/egress/"
PAGE = "/w/acme/settings/connections/egress/"


@pytest.fixture
def no_environment_allowlist(settings):
    settings.FLOWGATE = {**settings.FLOWGATE, "SSRF_ALLOWLIST": []}


def run_call(workspace, actor, url):
    flow = published_flow(
        workspace,
        actor,
        definition(
            [node("start", "trigger.manual"), node("call", "connector.http", url=url)],
            [("start", "call")],
        ),
        name=url,
    )
    run = run_start(flow=flow, trigger="manual", payload=envelope({}), enqueue=False).run
    advance(run.id)
    run.refresh_from_db()
    return run


def test_an_admin_opens_a_host_for_the_next_call_and_the_change_is_audited(
    admin_client, workspace, admin_user, no_environment_allowlist
):
    with CountingServer() as server:
        assert run_call(workspace, admin_user, f"{server.url}/a").status == "failed"
        response = admin_client.put(
            API, {"allowlist": ["127.0.0.1/32", "CRM.office.internal."]}, "application/json"
        )
        assert response.status_code == 200, response.content
        assert response.json()["allowlist"] == ["127.0.0.1/32", "crm.office.internal"]
        assert run_call(workspace, admin_user, f"{server.url}/b").status == "succeeded"
        admin_client.put(API, {"allowlist": []}, "application/json")
        assert run_call(workspace, admin_user, f"{server.url}/c").status == "failed"
    assert [request["path"] for request in server.requests] == ["/b"]
    changes = AuditEvent.objects.filter(action="settings.egress_changed").order_by("sequence")
    assert [(e.data["before"], e.data["after"]) for e in changes] == [
        ({"allowlist": []}, {"allowlist": ["127.0.0.1/32", "crm.office.internal"]}),
        ({"allowlist": ["127.0.0.1/32", "crm.office.internal"]}, {"allowlist": []}),
    ]
    assert changes[0].actor == admin_user


def test_the_connection_test_uses_the_workspaces_allow_list(
    workspace, admin_user, no_environment_allowlist
):
    with CountingServer() as server:
        connection = connection_create(
            workspace=workspace,
            actor=admin_user,
            name="office",
            type="http_api",
            config={"auth": "none", "base_url": server.url},
            secrets={},
        )
        assert connection_test(connection=connection).stage == "refused"
        egress_settings_save(workspace=workspace, actor=admin_user, allowlist=["127.0.0.1"])
        assert connection_test(connection=connection).ok
    assert len(server.requests) == 1


def test_the_settings_page_saves_and_shows_the_list(admin_client, no_environment_allowlist):
    page = admin_client.get(PAGE)
    assert page.status_code == 200 and b"Egress" in page.content
    saved = admin_client.post(PAGE, {"allowlist": "10.20.0.0/16\napi.office.internal"})
    assert saved.status_code == 302
    assert b"10.20.0.0/16" in admin_client.get(PAGE).content
    refused = admin_client.post(PAGE, {"allowlist": "0.0.0.0/0"})
    assert refused.status_code == 400 and b"too broad" in refused.content


@pytest.mark.parametrize(
    ("entries", "says"),
    [
        (["0.0.0.0/0"], "too broad"),
        (["::/0"], "too broad"),
        (["metadata.google.internal"], "never allowed"),
        (["not a host"], "neither a host name nor a network"),
    ],
)
def test_entries_that_open_too_much_are_a_400(admin_client, entries, says):
    response = admin_client.put(API, {"allowlist": entries}, "application/json")
    assert response.status_code == 400 and says in response.json()["error"]["message"]


def test_builders_and_outsiders_can_neither_read_nor_change_it(
    builder_client, outsider_client, admin_client
):
    admin_client.put(API, {"allowlist": ["10.0.0.0/8"]}, "application/json")
    for client in (builder_client, outsider_client):
        assert client.get(API).status_code in (403, 404)
        assert client.put(API, {"allowlist": []}, "application/json").status_code in (403, 404)
        assert client.get(PAGE).status_code in (403, 404)
    assert admin_client.get(API).json()["allowlist"] == ["10.0.0.0/8"]
