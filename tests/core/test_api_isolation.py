"""Workspace isolation of the whole REST API, driven by its OpenAPI schema.

Every workspace-scoped operation (``/api/w/{workspace_slug}/...``) is tried:
- without credentials → 401;
- with ids of objects that exist in workspace "acme", by an admin of "globex" (with an
  API token), both through "globex"'s own URL and through "acme"'s → 404, never 200 or 5xx.
A positive control checks "acme"'s admin does reach each object with the same ids, so the
404s are about the workspace, not about ids that do not exist. A path parameter this test
has no object for fails the test: a new endpoint must bring its fixture here.
"""

from __future__ import annotations

import re

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from apps.accounts.services import api_token_create
from tests.core.api_objects import api_objects

pytestmark = pytest.mark.django_db(transaction=True)

WORKSPACE_PREFIX = "/api/w/{workspace_slug}/"
METHODS = ("get", "post", "put", "patch", "delete")
PARAM = re.compile(r"{(\w+)}")
# Required query parameters the schema does not describe.
QUERY = {WORKSPACE_PREFIX + "flows/{flow_id}/diff/": "?from=1&to=draft"}


def workspace_operations() -> list[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [
        (path, method)
        for path, operations in sorted(schema["paths"].items())
        if path.startswith(WORKSPACE_PREFIX)
        for method in METHODS
        if method in operations
    ]


OPERATIONS = workspace_operations()
WITH_IDS = [(path, method) for path, method in OPERATIONS if len(PARAM.findall(path)) > 1]


@pytest.fixture
def acme_ids(workspace, admin_user, builder_user):
    return api_objects(workspace, admin_user, builder_user)


def fill(path: str, ids: dict, workspace_slug: str) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1)
        if name == "workspace_slug":
            return workspace_slug
        if name not in ids:
            pytest.fail(
                f"{path}: no fixture object for path parameter {{{name}}}; add it to acme_ids"
            )
        return str(ids[name])

    return PARAM.sub(value, path) + QUERY.get(path, "")


def call(client: APIClient, method: str, url: str):
    if method in ("get", "delete"):
        return getattr(client, method)(url)
    return getattr(client, method)(url, {}, format="json")


@pytest.fixture
def outsider_api(outsider, other_workspace) -> APIClient:
    client = APIClient()
    issued = api_token_create(user=outsider, workspace=other_workspace, name="probe")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    return client


@pytest.fixture
def acme_admin_api(admin_user, workspace) -> APIClient:
    client = APIClient()
    issued = api_token_create(user=admin_user, workspace=workspace, name="control")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    return client


def test_the_schema_lists_the_workspace_endpoints():
    paths = {path for path, _ in OPERATIONS}
    for expected in ("flows/{flow_id}/", "runs/{run_id}/", "tasks/{task_id}/", "audit/"):
        assert WORKSPACE_PREFIX + expected in paths
    assert len(WITH_IDS) >= 20


def test_every_workspace_endpoint_needs_credentials(acme_ids):
    anonymous = APIClient()
    failures = []
    for path, method in OPERATIONS:
        url = fill(path, acme_ids, "acme")
        response = call(anonymous, method, url)
        if response.status_code != 401:
            failures.append(f"{method.upper()} {url} → {response.status_code}")
    assert not failures, "\n".join(failures)


def test_another_workspace_never_reaches_these_ids(acme_ids, outsider_api, acme_admin_api):
    failures = []
    for path, method in WITH_IDS:
        for slug in ("globex", "acme"):
            url = fill(path, acme_ids, slug)
            response = call(outsider_api, method, url)
            if response.status_code != 404:
                failures.append(f"{method.upper()} {url} → {response.status_code}")
    assert not failures, "\n".join(failures)

    # The control: the same ids are real, "acme"'s admin reads every one of them.
    for path, method in WITH_IDS:
        if method == "get":
            url = fill(path, acme_ids, "acme")
            assert acme_admin_api.get(url).status_code == 200, url


def test_lists_and_bulk_actions_of_another_workspace_hold_none_of_these_ids(acme_ids, outsider_api):
    secrets = [str(value) for key, value in acme_ids.items() if key.endswith("_id")]
    for path, method in OPERATIONS:
        if method == "get" and path not in dict(WITH_IDS):
            url = fill(path, acme_ids, "globex")
            response = outsider_api.get(url)
            assert response.status_code == 200, url
            body = response.content.decode()
            assert not [value for value in secrets if value in body], url
    # Ids in a body are scoped too: globex cannot act on acme's runs in bulk.
    bulk = outsider_api.post(
        fill(WORKSPACE_PREFIX + "runs/bulk/", acme_ids, "globex"),
        {"action": "rerun", "runs": [str(acme_ids["run_id"])]},
        format="json",
    )
    assert bulk.status_code == 200 and bulk.json()["results"] == []
