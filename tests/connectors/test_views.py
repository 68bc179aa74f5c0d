"""Settings → Connections and the connections API: admins only, secrets write-only, other
workspaces' connections are 404."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.connectors.crypto import decrypt_secrets
from apps.connectors.models import Connection
from apps.connectors.services import connection_create
from tests.support.http_server import CountingServer

pytestmark = pytest.mark.django_db

SECRET = "pw-1b2c3d-never-shown"


@pytest.fixture
def api_connection(workspace, admin_user):
    return connection_create(
        workspace=workspace,
        actor=admin_user,
        name="crm",
        type="http_api",
        config={"auth": "basic", "username": "svc", "base_url": "https://crm.example.com"},
        secrets={"password": SECRET},
    )


def url(name, **kwargs):
    return reverse(f"connections:{name}", kwargs={"workspace_slug": "acme", **kwargs})


def test_admins_see_connections_and_other_roles_are_refused(
    admin_client, builder_client, reviewer_client, api_connection
):
    page = admin_client.get(url("list"))
    assert page.status_code == 200 and b"crm" in page.content
    assert builder_client.get(url("list")).status_code == 403
    assert reviewer_client.get(url("list")).status_code == 403
    detail = url("detail", connection_id=api_connection.pk)
    assert builder_client.get(detail).status_code == 403
    assert builder_client.post(url("delete", connection_id=api_connection.pk)).status_code == 403


def test_another_workspace_gets_404_for_every_page(outsider_client, api_connection):
    assert outsider_client.get(url("list")).status_code == 404
    for name in ("detail", "test", "delete"):
        response = outsider_client.post(url(name, connection_id=api_connection.pk))
        assert response.status_code == 404, name
    assert Connection.objects.filter(pk=api_connection.pk).exists()


def test_an_admin_of_another_workspace_cannot_reach_this_one_through_their_own(
    outsider_client, api_connection
):
    other = reverse(
        "connections:detail",
        kwargs={"workspace_slug": "globex", "connection_id": api_connection.pk},
    )
    assert outsider_client.get(other).status_code == 404


def test_creating_from_the_form_encrypts_the_secret_and_never_shows_it(admin_client, workspace):
    response = admin_client.post(
        url("create", type_key="http_api"),
        {
            "name": "billing",
            "description": "Billing API",
            "config_base_url": "https://billing.example.com",
            "config_auth": "bearer",
            "config_username": "",
            "config_header_name": "X-API-Key",
            "secret_token": SECRET,
        },
    )
    assert response.status_code == 302
    connection = Connection.objects.get(workspace=workspace, name="billing")
    assert connection.config["base_url"] == "https://billing.example.com"
    assert SECRET not in connection.secrets_encrypted
    assert decrypt_secrets(connection.secrets_encrypted) == {"token": SECRET}
    page = admin_client.get(response["Location"])
    assert page.status_code == 200
    assert SECRET.encode() not in page.content
    assert b"<code>token</code>" in page.content  # says it is set, not what it is


def test_invalid_settings_rerender_the_form_with_the_error(admin_client):
    response = admin_client.post(
        url("create", type_key="http_api"),
        {"name": "bad", "config_base_url": "ftp://x", "config_auth": "bearer"},
    )
    assert response.status_code == 400
    assert b"should match pattern" in response.content
    assert not Connection.objects.filter(name="bad").exists()


def test_saving_with_a_blank_secret_keeps_the_stored_secret(admin_client, api_connection):
    response = admin_client.post(
        url("detail", connection_id=api_connection.pk),
        {
            "description": "changed",
            "config_base_url": "https://crm2.example.com",
            "config_auth": "basic",
            "config_username": "svc2",
            "config_header_name": "X-API-Key",
            "secret_password": "",
        },
    )
    assert response.status_code == 302
    api_connection.refresh_from_db()
    assert api_connection.config["username"] == "svc2"
    assert decrypt_secrets(api_connection.secrets_encrypted) == {"password": SECRET}


def test_the_test_button_says_authentication_failed(admin_client, workspace, admin_user, settings):
    settings.FLOWGATE = {**settings.FLOWGATE, "SSRF_ALLOWLIST": ["127.0.0.1"]}
    with CountingServer(statuses=[401]) as server:
        connection = connection_create(
            workspace=workspace,
            actor=admin_user,
            name="local",
            type="http_api",
            config={"auth": "bearer", "base_url": server.url + "/me"},
            secrets={"token": SECRET},
        )
        response = admin_client.post(
            url("test", connection_id=connection.pk), HTTP_HX_REQUEST="true"
        )
    assert response.status_code == 200
    assert b"authentication failed" in response.content
    assert server.requests[0]["headers"]["Authorization"] == f"Bearer {SECRET}"
    connection.refresh_from_db()
    assert connection.last_test_ok is False


def test_the_test_button_names_a_refused_connection(admin_client, workspace, admin_user, settings):
    from tests.support.processes import free_port

    settings.FLOWGATE = {**settings.FLOWGATE, "SSRF_ALLOWLIST": ["127.0.0.1"]}
    connection = connection_create(
        workspace=workspace,
        actor=admin_user,
        name="down",
        type="http_api",
        config={"auth": "none", "base_url": f"http://127.0.0.1:{free_port()}/"},
        secrets={},
    )
    response = admin_client.post(url("test", connection_id=connection.pk), HTTP_HX_REQUEST="true")
    assert b"Failed (refused)" in response.content


# --- REST API ------------------------------------------------------------------------
def api(path=""):
    return f"/api/w/acme/connections/{path}"


def test_the_api_creates_a_connection_and_never_returns_secrets(admin_client):
    response = admin_client.post(
        api(),
        {
            "name": "ops",
            "type": "http_api",
            "config": {"auth": "bearer"},
            "secrets": {"token": SECRET},
        },
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["secrets_set"] == ["token"] and SECRET not in response.content.decode()
    detail = admin_client.get(api(f"{body['id']}/"))
    assert SECRET not in detail.content.decode()
    patched = admin_client.patch(
        api(f"{body['id']}/"), {"config": {"auth": "magic"}}, content_type="application/json"
    )
    assert patched.status_code == 400 and "auth" in patched.json()["error"]["fields"]


def test_builders_list_names_only_and_cannot_write(builder_client, api_connection):
    listing = builder_client.get(api())
    assert listing.status_code == 200
    assert listing.json() == [
        {"id": str(api_connection.pk), "name": "crm", "type": "http_api", "description": ""}
    ]
    created = builder_client.post(
        api(), {"name": "x", "type": "http_api"}, content_type="application/json"
    )
    assert created.status_code == 403
    assert builder_client.get(api(f"{api_connection.pk}/")).status_code == 403


def test_the_api_hides_other_workspaces_connections(outsider_client, api_connection):
    assert outsider_client.get(api()).status_code == 404
    assert outsider_client.get(f"/api/w/globex/connections/{api_connection.pk}/").status_code == 404
    assert (
        outsider_client.delete(f"/api/w/globex/connections/{api_connection.pk}/").status_code == 404
    )


def test_listing_connections_takes_a_constant_number_of_queries(
    admin_client, workspace, admin_user, django_assert_max_num_queries
):
    for n in range(5):
        connection_create(
            workspace=workspace,
            actor=admin_user,
            name=f"api-{n}",
            type="http_api",
            config={"auth": "bearer"},
            secrets={"token": f"t{n}"},
        )
    with django_assert_max_num_queries(6):
        assert admin_client.get(url("list")).status_code == 200
    with django_assert_max_num_queries(6):
        assert len(admin_client.get(api()).json()) == 5


def test_used_by_lists_each_flow_once_and_not_an_archived_one_of_the_same_name(
    admin_client, api_connection, builder_user, workspace
):
    from apps.flows.models import Flow
    from apps.flows.services import flow_create
    from tests.runs.helpers import definition, node

    def calls(node_id: str) -> dict:
        return node(node_id, "connector.http", connection="crm", method="GET", url="/a")

    # The connection named by two nodes of one flow.
    twice = definition(
        [node("start", "trigger.manual"), calls("one"), calls("two")],
        [("start", "one"), ("one", "two")],
    )
    flow = flow_create(workspace=workspace, actor=builder_user, name="Sync", definition=twice)
    old = flow_create(workspace=workspace, actor=builder_user, name="Sync (old)", definition=twice)
    Flow.objects.filter(pk=old.pk).update(status="archived", name="Sync")

    body = admin_client.get(url("detail", connection_id=api_connection.pk)).content.decode()
    assert body.count("data-used-by=") == 1
    assert f'data-used-by="{flow.slug}"' in body and f"/flows/{flow.id}/" in body
