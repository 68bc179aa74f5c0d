"""The flows and runs REST API as the canvas and integrators use it."""

from __future__ import annotations

import json

import pytest

from apps.accounts.models import Workspace
from apps.flows.models import Flow, FlowVersion
from apps.runs.models import Run
from tests.runs.helpers import definition, node

pytestmark = pytest.mark.django_db

VALID = definition(
    [
        node("start", "trigger.manual"),
        node("calc", "transform.set", values={"double": "trigger.body.x * 2"}),
    ],
    [("start", "calc")],
    name="Doubler",
)


def api(workspace: Workspace, path: str = "") -> str:
    return f"/api/w/{workspace.slug}/{path}"


def create(client, workspace, body) -> dict:
    response = client.post(
        api(workspace, "flows/"), data=json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 201, response.content
    return response.json()


def test_blocks_are_listed_with_schemas_and_ports(builder_client):
    blocks = {block["key"]: block for block in builder_client.get("/api/blocks/").json()}
    assert {
        "trigger.webhook",
        "transform.set",
        "logic.branch",
        "connector.http",
        "flow.respond",
    } <= set(blocks)
    assert blocks["logic.branch"]["ports"] == ["true", "false"]
    assert (
        blocks["transform.set"]["config_schema"]["properties"]["values"]["additionalProperties"][
            "format"
        ]
        == "cel"
    )
    assert blocks["logic.switch"]["dynamic_ports"] is True


def test_create_save_publish_and_version_history(builder_client, workspace):
    flow = create(builder_client, workspace, {"name": "Doubler", "definition": VALID})
    saved = builder_client.put(
        api(workspace, f"flows/{flow['id']}/draft/"),
        data=json.dumps({"definition": VALID, "revision": flow["draft"]["revision"]}),
        content_type="application/json",
    )
    assert saved.status_code == 200 and saved.json()["problems"] == []
    published = builder_client.post(
        api(workspace, f"flows/{flow['id']}/publish/"),
        data={"note": "first"},
        content_type="application/json",
    )
    assert published.status_code == 201 and published.json()["number"] == 1
    versions = builder_client.get(api(workspace, f"flows/{flow['id']}/versions/")).json()
    assert [v["number"] for v in versions] == [1]


def test_a_stale_draft_save_is_a_conflict_not_an_overwrite(builder_client, workspace):
    flow = create(builder_client, workspace, {"name": "Doubler", "definition": VALID})
    url = api(workspace, f"flows/{flow['id']}/draft/")
    body = {"definition": VALID, "revision": flow["draft"]["revision"]}
    assert (
        builder_client.put(url, data=json.dumps(body), content_type="application/json").status_code
        == 200
    )
    stale = builder_client.put(url, data=json.dumps(body), content_type="application/json")
    assert stale.status_code == 409
    assert "someone else saved" in stale.json()["error"]["message"]


def test_a_draft_saved_with_a_blank_name_keeps_the_flow_named(builder_client, workspace):
    flow = create(builder_client, workspace, {"name": "Doubler", "definition": VALID})
    body = {"definition": {**VALID, "name": "   "}, "revision": flow["draft"]["revision"]}
    saved = builder_client.put(
        api(workspace, f"flows/{flow['id']}/draft/"),
        data=json.dumps(body),
        content_type="application/json",
    )
    assert saved.status_code == 200
    assert Flow.objects.get(pk=flow["id"]).name == "Doubler"


def test_publishing_an_invalid_flow_lists_every_problem(builder_client, workspace):
    broken = definition(
        [node("start", "trigger.manual"), node("x", "nope.block")], [("start", "x")]
    )
    flow = create(builder_client, workspace, {"name": "Broken", "definition": broken})
    response = builder_client.post(
        api(workspace, f"flows/{flow['id']}/publish/"),
        data={},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["problems"][0]["node"] == "x"
    assert FlowVersion.objects.count() == 0


def test_import_of_a_broken_file_creates_nothing(builder_client, workspace):
    response = builder_client.post(
        api(workspace, "flows/import/"),
        data=json.dumps({"schema": "other"}),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["problems"]
    assert Flow.objects.count() == 0


def test_malformed_json_body_is_a_400_with_the_parsers_message(builder_client, workspace):
    response = builder_client.post(
        api(workspace, "flows/"), data="{oops", content_type="application/json"
    )
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["error"]["message"]


def test_diff_between_versions_names_changed_config(builder_client, workspace):
    flow = create(builder_client, workspace, {"name": "Doubler", "definition": VALID})
    publish = api(workspace, f"flows/{flow['id']}/publish/")
    builder_client.post(publish, data={}, content_type="application/json")
    changed = json.loads(json.dumps(VALID))
    changed["nodes"][1]["config"]["values"]["double"] = "trigger.body.x * 3"
    changed["nodes"].append(node("extra", "transform.set", values={"y": "1"}))
    changed["edges"].append({"from": "calc", "to": "extra"})
    builder_client.put(
        api(workspace, f"flows/{flow['id']}/draft/"),
        data=json.dumps({"definition": changed, "revision": 1}),
        content_type="application/json",
    )
    builder_client.post(publish, data={}, content_type="application/json")
    diff = builder_client.get(api(workspace, f"flows/{flow['id']}/diff/?from=1&to=2")).json()
    assert diff["nodes"]["added"] == ["extra"]
    assert diff["nodes"]["changed"][0]["changes"][0] == {
        "path": "config.values.double",
        "before": "trigger.body.x * 2",
        "after": "trigger.body.x * 3",
    }
    assert diff["edges"]["added"] == ["calc → extra"]


def test_another_workspaces_flow_is_404_and_reviewers_cannot_edit(
    builder_client, workspace, other_workspace, outsider_client, reviewer_client
):
    flow = create(builder_client, workspace, {"name": "Doubler", "definition": VALID})
    assert outsider_client.get(api(workspace, f"flows/{flow['id']}/")).status_code == 404
    assert outsider_client.get(api(other_workspace, f"flows/{flow['id']}/")).status_code == 404
    response = reviewer_client.put(
        api(workspace, f"flows/{flow['id']}/draft/"),
        data=json.dumps({"definition": VALID, "revision": 1}),
        content_type="application/json",
    )
    assert response.status_code == 403


def test_unauthenticated_api_calls_are_401(client, workspace):
    assert client.get(api(workspace, "flows/")).status_code in (401, 403)


def test_start_a_run_and_read_its_steps(builder_client, workspace):
    flow = create(builder_client, workspace, {"name": "Doubler", "definition": VALID})
    builder_client.post(
        api(workspace, f"flows/{flow['id']}/publish/"),
        data={},
        content_type="application/json",
    )
    started = builder_client.post(
        api(workspace, f"flows/{flow['id']}/runs/"),
        data={"input": {"x": 4}},
        content_type="application/json",
    )
    assert started.status_code == 201
    from apps.runs.engine import advance

    advance(started.json()["id"])
    detail = builder_client.get(api(workspace, f"runs/{started.json()['id']}/")).json()
    assert detail["status"] == "succeeded"
    assert [s["node"] for s in detail["steps"]] == ["start", "calc"]
    assert detail["steps"][1]["output"] == {"double": 8}
    assert Run.objects.count() == 1
    assert builder_client.get(api(workspace, "runs/?status=bogus")).status_code == 400


def test_expression_preview_evaluates_against_sample_data(builder_client, workspace):
    url = api(workspace, "expressions/preview/")
    ok = builder_client.post(
        url,
        data={"expression": "trigger.body.x + 1", "scope": {"trigger": {"body": {"x": 1}}}},
        content_type="application/json",
    )
    assert ok.json() == {"value": 2}
    bad = builder_client.post(url, data={"expression": "1 +"}, content_type="application/json")
    # The preview worked: it shows the error (a 4xx would be a console error per keystroke).
    assert bad.status_code == 200 and "cannot parse" in bad.json()["error"]["message"]


def test_the_publish_gate_denies_a_builder_calling_an_unlisted_host(
    builder_client, admin_client, workspace
):
    calling = definition(
        [
            node("start", "trigger.manual"),
            node("call", "connector.http", url="https://evil.example.net/x"),
        ],
        [("start", "call")],
    )
    flow = create(builder_client, workspace, {"name": "Caller", "definition": calling})
    denied = builder_client.post(
        api(workspace, f"flows/{flow['id']}/publish/"), data={}, content_type="application/json"
    )
    assert denied.status_code == 403
    assert any("evil.example.net" in reason for reason in denied.json()["error"]["reasons"])
    allowed = admin_client.post(
        api(workspace, f"flows/{flow['id']}/publish/"), data={}, content_type="application/json"
    )
    assert allowed.status_code == 201


def test_a_flow_touching_a_field_classified_pii_needs_an_admin_to_publish(
    builder_client, admin_client, admin_user, workspace
):
    from apps.audit.services import data_settings_save

    data_settings_save(
        workspace=workspace, actor=admin_user, sensitive_fields=["IBAN", "ssn"], retention_days=30
    )
    touching = definition(
        [
            node("start", "trigger.manual"),
            node("pick", "transform.set", values={"account": "trigger.body.iban"}),
        ],
        [("start", "pick")],
    )
    flow = create(builder_client, workspace, {"name": "Payouts", "definition": touching})
    publish = api(workspace, f"flows/{flow['id']}/publish/")
    denied = builder_client.post(publish, data={}, content_type="application/json")
    assert denied.status_code == 403
    assert denied.json()["error"]["reasons"] == [
        "the flow handles fields marked PII: iban",
        "an admin must publish this flow",
    ]
    allowed = admin_client.post(publish, data={}, content_type="application/json")
    assert allowed.status_code == 201


def test_a_flow_that_touches_no_classified_field_is_published_by_its_builder(
    builder_client, admin_user, workspace
):
    from apps.audit.services import data_settings_save

    data_settings_save(
        workspace=workspace, actor=admin_user, sensitive_fields=["iban"], retention_days=30
    )
    plain = definition(
        [
            node("start", "trigger.manual"),
            node("pick", "transform.set", values={"iban_count": "size(trigger.body.items)"}),
        ],
        [("start", "pick")],
    )
    flow = create(builder_client, workspace, {"name": "Counts", "definition": plain})
    published = builder_client.post(
        api(workspace, f"flows/{flow['id']}/publish/"), data={}, content_type="application/json"
    )
    assert published.status_code == 201


def test_an_archived_flow_is_restored_before_it_can_be_published(
    builder_client, builder_user, workspace
):
    from apps.flows import services

    flow = services.flow_create(
        workspace=workspace, actor=builder_user, name="Doubler", definition=VALID
    )
    services.flow_publish(flow=flow, actor=builder_user)
    services.flow_archive(flow=flow, actor=builder_user)
    refused = builder_client.post(
        api(workspace, f"flows/{flow.id}/publish/"), data={}, content_type="application/json"
    )
    assert refused.status_code == 409 and "restore it" in refused.json()["error"]["message"]
    services.flow_restore(flow=flow, actor=builder_user)
    flow.refresh_from_db()
    assert flow.status == "published"  # it had a version: live again
