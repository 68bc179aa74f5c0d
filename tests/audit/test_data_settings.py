"""Settings → Data: field classification (PII) masks the classified fields in decision
records, run data as shown, audit exports; only admins edit it."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent, DataSettings
from apps.audit.redaction import MASK, sensitive_keys_for_workspace
from apps.audit.services import audit_record, data_settings_save
from apps.policies.models import PolicyEvaluation
from tests.audit.helpers import policy_routed_run

pytestmark = pytest.mark.django_db(transaction=True)

PAGE = reverse("data_settings:edit", kwargs={"workspace_slug": "acme"})


def test_admin_classifies_fields_and_sets_retention(admin_client, workspace):
    page = admin_client.get(PAGE)
    assert page.status_code == 200
    body = page.content.decode()
    assert "Sensitive fields (PII)" in body and 'value="90"' in body  # the default

    response = admin_client.post(
        PAGE, {"sensitive_fields": "Email\nssn, date_of_birth\n\nemail", "retention_days": "30"}
    )
    assert response.status_code == 302
    saved = DataSettings.objects.get(workspace=workspace)
    assert saved.sensitive_fields == ["date_of_birth", "email", "ssn"]
    assert saved.retention_days == 30
    event = AuditEvent.objects.get(workspace=workspace, action="settings.data_changed")
    assert event.data["after"] == {
        "sensitive_fields": ["date_of_birth", "email", "ssn"],
        "retention_days": 30,
    }
    assert "<code>ssn</code>" in admin_client.get(PAGE).content.decode()


def test_bad_data_settings_are_refused_with_the_field(admin_client, workspace):
    response = admin_client.post(PAGE, {"sensitive_fields": "e mail", "retention_days": "0"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "Not a field name: e mail" in body
    assert "greater than or equal to 1" in body
    assert not DataSettings.objects.filter(workspace=workspace).exists()


def test_only_admins_of_the_workspace_edit_data_settings(builder_client, outsider_client):
    assert builder_client.get(PAGE).status_code == 403
    assert (
        builder_client.post(PAGE, {"sensitive_fields": "x", "retention_days": "1"}).status_code
        == 403
    )
    assert outsider_client.get(PAGE).status_code == 404


def test_classification_is_cached_and_dropped_on_save(workspace, admin_user):
    assert sensitive_keys_for_workspace(workspace.id) == frozenset()
    data_settings_save(
        workspace=workspace, actor=admin_user, sensitive_fields=["Email"], retention_days=90
    )
    assert sensitive_keys_for_workspace(workspace.id) == frozenset({"email"})
    data_settings_save(
        workspace=workspace, actor=admin_user, sensitive_fields=[], retention_days=90
    )
    assert sensitive_keys_for_workspace(workspace.id) == frozenset()


def test_classified_fields_are_masked_in_decisions_run_data_and_exports(
    workspace, other_workspace, admin_user, admin_client
):
    data_settings_save(
        workspace=workspace,
        actor=admin_user,
        sensitive_fields=["email", "customer_ref"],
        retention_days=90,
    )
    # An event recorded before the field was classified: masked on export all the same.
    audit_record(
        workspace_id=workspace.id,
        action="customer.imported",
        data={"customer": {"email": "old@example.com", "plan": "gold"}},
    )
    run = policy_routed_run(
        workspace,
        admin_user,
        policy_input={
            "amount": "trigger.body.amount",
            "email": "trigger.body.email",
            "customer_ref": "trigger.body.ref",
        },
        body={"amount": 5, "email": "ada@example.com", "ref": "C-7731"},
    )
    assert run.status == "succeeded"  # the flow itself still sees the real value
    step = run.steps.get(node_id="route")
    assert step.input["body"]["email"] == "ada@example.com" and step.port == "approve"

    # The decision audit record.
    decision = AuditEvent.objects.get(workspace=workspace, action="decision.policy")
    assert decision.data["input"]["body"] == {"email": MASK, "amount": 5, "ref": "C-7731"}
    assert "ada@example.com" not in json.dumps(decision.data)

    # The policy decision log.
    evaluation = PolicyEvaluation.objects.get(workspace=workspace, policy_slug="limits")
    assert evaluation.input["customer_ref"] == MASK and evaluation.input["amount"] == 5

    # Run data where it is shown: the REST API and the run page.
    api = admin_client.get(f"/api/w/acme/runs/{run.id}/").json()
    assert "ada@example.com" not in json.dumps(api)
    route = next(s for s in api["steps"] if s["node"] == "route")
    assert route["input"]["body"] == {"email": MASK, "amount": 5, "ref": "C-7731"}
    assert api["input"]["body"]["email"] == MASK
    page = admin_client.get(
        reverse("runs:detail", kwargs={"workspace_slug": "acme", "run_id": run.id})
    )
    assert page.status_code == 200
    assert "ada@example.com" not in page.content.decode() and MASK in page.content.decode()

    # The audit exports (JSON Lines and CSV) and the audit API.
    export = admin_client.get(reverse("audit:export_jsonl", kwargs={"workspace_slug": "acme"}))
    text = b"".join(export.streaming_content).decode()
    assert "ada@example.com" not in text and "old@example.com" not in text
    imported = next(json.loads(line) for line in text.splitlines() if '"customer.imported"' in line)
    assert imported["data"]["customer"] == {"email": MASK, "plan": "gold"}
    csv_text = b"".join(
        admin_client.get(
            reverse("audit:export_csv", kwargs={"workspace_slug": "acme"})
        ).streaming_content
    ).decode()
    assert "old@example.com" not in csv_text and "gold" in csv_text
    listed = admin_client.get("/api/w/acme/audit/").content.decode()
    assert "old@example.com" not in listed and "ada@example.com" not in listed

    # Another workspace's classification does not apply here, nor this one's there.
    assert sensitive_keys_for_workspace(other_workspace.id) == frozenset()


def test_demo_seed_classifies_personal_fields_once(workspace, admin_user):
    from django.apps import apps

    seed = apps.get_app_config("audit").seed_demo
    seed(workspace=workspace, users={"admin": admin_user})
    assert "email" in sensitive_keys_for_workspace(workspace.id)
    data_settings_save(
        workspace=workspace, actor=admin_user, sensitive_fields=["ssn"], retention_days=7
    )
    seed(workspace=workspace, users={"admin": admin_user})  # an admin's edits are kept
    assert DataSettings.objects.get(workspace=workspace).sensitive_fields == ["ssn"]


API = "/api/w/acme/settings/data/"


def test_data_settings_api(admin_client, builder_client, outsider_client, workspace):
    assert admin_client.get(API).json()["retention_days"] == 90
    saved = admin_client.put(
        API, {"sensitive_fields": ["IBAN", "email"], "retention_days": 14}, "application/json"
    )
    assert saved.status_code == 200
    assert saved.json()["sensitive_fields"] == ["email", "iban"]
    assert sensitive_keys_for_workspace(workspace.id) == frozenset({"email", "iban"})

    bad = admin_client.put(
        API, {"sensitive_fields": ["no spaces"], "retention_days": 0}, "application/json"
    )
    assert bad.status_code == 400
    assert set(bad.json()["error"]["fields"]) == {"sensitive_fields", "retention_days"}
    assert builder_client.get(API).status_code == 403
    assert outsider_client.get(API).status_code == 404
    assert DataSettings.objects.get(workspace=workspace).retention_days == 14


def test_redaction_falls_back_to_postgres_when_the_cache_is_down(
    workspace, admin_user, monkeypatch
):
    from apps.audit import redaction

    data_settings_save(
        workspace=workspace, actor=admin_user, sensitive_fields=["email"], retention_days=90
    )
    redaction._local.clear()

    def unavailable(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(redaction.cache, "get", unavailable)
    monkeypatch.setattr(redaction.cache, "set", unavailable)
    assert redaction.redact_for_workspace(workspace.id, {"email": "a@b.c"}) == {"email": MASK}
