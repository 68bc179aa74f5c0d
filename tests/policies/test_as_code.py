"""Policies as code: export a policy with its tests, load it elsewhere (API and
``manage.py policies``), publish only what passes its tests, and test in CI."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.accounts.services import api_token_create
from apps.policies import services
from apps.policies.as_code import SCHEMA, policy_document, policy_import
from apps.policies.models import Policy
from apps.policies.services import PolicyValidationError

V1 = 'package demo.limits\n\nroute := "approve" if input.amount < 100\n\nelse := "review"\n'
V2 = 'package demo.limits\n\nroute := "approve" if input.amount < 500\n\nelse := "review"\n'
SMALL = {"name": "small", "rule": "route", "input": {"amount": 50}, "expected": "approve"}
MID = {"name": "mid", "rule": "route", "input": {"amount": 300}, "expected": "approve"}
FAIL = {"name": "fail", "rule": "route", "input": {"amount": 300}, "expected": "review"}


def _document(source: str = V1, tests: list | None = None) -> dict:
    return {"schema": SCHEMA, "slug": "limits", "name": "Limits", "source": source,
            "tests": [SMALL] if tests is None else tests}  # fmt: skip


def test_a_document_round_trips_into_another_workspace(
    workspace, other_workspace, admin_user, outsider
):
    imported = policy_import(
        workspace=workspace, actor=admin_user, document=_document(), publish=True
    )
    assert imported.created and imported.version.number == 1

    exported = policy_document(imported.policy)
    again = policy_import(workspace=other_workspace, actor=outsider, document=exported)

    assert again.created and again.version is None
    copy = policy_document(again.policy)
    assert copy["source"] == V1 and copy["tests"] == [SMALL] and copy["versions"] == []


def test_reimporting_updates_the_draft_and_tests_and_publishes_what_changed(workspace, admin_user):
    policy_import(workspace=workspace, actor=admin_user, document=_document(), publish=True)

    again = policy_import(
        workspace=workspace, actor=admin_user, document=_document(V2, [MID]), publish=True
    )

    assert not again.created and again.version.number == 2
    assert [t.name for t in again.policy.test_cases.all()] == ["mid"]
    unchanged = policy_import(
        workspace=workspace, actor=admin_user, document=_document(V2, [MID]), publish=True
    )
    assert unchanged.version is None and Policy.objects.count() == 1


def test_a_failing_test_publishes_nothing_and_keeps_nothing(workspace, admin_user):
    with pytest.raises(PolicyValidationError, match="1 test\\(s\\) failed"):
        policy_import(
            workspace=workspace, actor=admin_user, document=_document(V1, [MID]), publish=True
        )
    assert not Policy.objects.filter(slug="limits").exists()


def test_bad_documents_are_refused_with_a_message(workspace, admin_user):
    for bad, message in (
        ({"slug": "x"}, "schema"),
        ({**_document(), "source": ""}, "'source'"),
        ({**_document(), "tests": [1]}, "'tests'"),
    ):
        with pytest.raises(PolicyValidationError, match=message):
            policy_import(workspace=workspace, actor=admin_user, document=bad)


def test_the_api_exports_imports_and_tests(client, workspace, admin_user, builder_user):
    def auth(user):
        secret = api_token_create(user=user, workspace=workspace, name="ci").secret
        return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}

    admin, builder = auth(admin_user), auth(builder_user)
    created = client.post(
        "/api/w/acme/policies/", {"document": _document(), "publish": True},
        content_type="application/json", **admin,
    )  # fmt: skip
    assert created.status_code == 201 and created.json()["published"] == 1
    assert client.get("/api/w/acme/policies/limits/", **builder).json()["tests"] == [SMALL]
    tested = client.post("/api/w/acme/policies/limits/test/", **builder).json()
    assert tested["passed"] is True and tested["results"][0]["actual"] == "approve"

    refused = client.post(
        "/api/w/acme/policies/", {"document": _document(V2)},
        content_type="application/json", **builder,
    )  # fmt: skip
    assert refused.status_code == 403
    bad = client.post(
        "/api/w/acme/policies/", {"document": _document(V2, [SMALL, FAIL]), "publish": True},
        content_type="application/json", **admin,
    )  # fmt: skip
    assert bad.status_code == 400 and bad.json()["error"]["errors"][0].startswith("fail: got")
    assert client.get("/api/w/acme/policies/limits/", **admin).json()["source"] == V1


def test_the_command_exports_imports_and_fails_ci_on_a_failing_test(
    tmp_path, workspace, admin_user
):
    policy_import(workspace=workspace, actor=admin_user, document=_document())
    call_command(
        "policies", "--workspace", "acme", "export", "--dir", str(tmp_path), stdout=StringIO()
    )
    path = tmp_path / "limits.policy.json"
    assert json.loads(path.read_text())["source"] == V1

    path.write_text(json.dumps(_document(V1, [SMALL, MID])))
    out = StringIO()
    call_command("policies", "--workspace", "acme", "import", str(path), stdout=out)
    assert json.loads(out.getvalue()) == {"policy": "limits", "created": False, "published": None}
    with pytest.raises(SystemExit) as failed:
        call_command(
            "policies",
            "--workspace",
            "acme",
            "test",
            "limits",
            stdout=StringIO(),
            stderr=StringIO(),
        )
    assert failed.value.code == 1
    with pytest.raises(CommandError, match="no policy nope"):
        call_command("policies", "--workspace", "acme", "test", "nope")
    assert services.policy_latest_version(policy=Policy.objects.get()) is None
