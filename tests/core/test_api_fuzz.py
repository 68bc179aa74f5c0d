"""Property-based fuzzing of the REST API with schemathesis, from its own OpenAPI schema
(``/api/schema/``): whatever an authenticated admin sends, the answer is never a 5xx.

Kept small (a bounded number of examples per operation, derandomized so a run is
repeatable): it guards against crashes on odd input, it does not replace the unit tests.
"""

from __future__ import annotations

import zlib

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, given, settings

from apps.accounts.services import api_token_create
from tests.core.api_objects import api_objects

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

EXAMPLES_PER_OPERATION = 12


def test_no_operation_answers_a_server_error(workspace, admin_user, builder_user):
    ids = api_objects(workspace, admin_user, builder_user)
    secret = api_token_create(user=admin_user, workspace=workspace, name="fuzz").secret
    headers = {"Authorization": f"Bearer {secret}"}
    schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
    failures: list[str] = []
    statuses: dict[int, int] = {}
    operations = 0

    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def probe(case) -> None:
            parameters = case.path_parameters or {}
            # Mostly aim at real objects of the workspace, so the fuzzed bodies and query
            # strings reach the code behind the lookups.
            for name in parameters:
                if name == "workspace_slug" or (
                    name in ids and zlib.crc32(str(parameters[name]).encode()) % 4
                ):
                    parameters[name] = str(ids[name])
            response = case.call(headers=headers)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} → {response.status_code}\n"
                    f"{case.as_curl_command()}"
                )

        probe()

    assert operations >= 30
    # The fuzzing reached the views (not only 404s for made-up workspaces and ids).
    assert statuses.get(200, 0) + statuses.get(201, 0) >= operations, statuses
    assert statuses.get(400, 0) > 0, statuses
    assert not failures, "\n\n".join(sorted(set(failures))[:20])
