"""The Flows pages: list, search, create (blank or from a template), duplicate, archive,
and the editor page, with their permissions and workspace isolation."""

from __future__ import annotations

import json

import pytest

from apps.flows import gallery
from apps.flows.models import Flow, FlowStatus
from apps.flows.services import flow_create
from apps.runs.models import Run
from tests.runs.helpers import definition, node

pytestmark = pytest.mark.django_db

TEMPLATE = definition(
    [node("start", "trigger.manual"), node("calc", "transform.set", values={"x": "1"})],
    [("start", "calc")],
    name="Doubler template",
)


def page(workspace, path: str = "") -> str:
    return f"/w/{workspace.slug}/flows/{path}"


@pytest.fixture(autouse=True)
def _no_templates(monkeypatch):
    """The shipped gallery grows; these tests say which templates exist."""
    monkeypatch.setattr(gallery, "_templates", dict)


@pytest.fixture
def one_template(_no_templates, monkeypatch):
    monkeypatch.setattr(
        gallery,
        "_templates",
        lambda: {
            "doubler": TEMPLATE,
            "future": definition([node("start", "model.classify")], name="Needs models"),
        },
    )


def test_empty_list_invites_to_create(builder_client, workspace):
    response = builder_client.get(page(workspace))
    body = response.content.decode()
    assert response.status_code == 200
    assert "No flows yet" in body
    assert "New blank flow" in body
    assert "No templates are installed yet" in body


def test_list_shows_status_last_run_and_escapes_names(builder_client, builder_user, workspace):
    flow = flow_create(workspace=workspace, actor=builder_user, name="<script>x()</script> Orders")
    Run.objects.create(
        workspace=workspace, flow=flow, status="failed", trigger="test", correlation_id="c1"
    )
    body = builder_client.get(page(workspace)).content.decode()
    assert "&lt;script&gt;x()&lt;/script&gt; Orders" in body
    assert "<script>x()" not in body
    assert "status-draft" in body
    assert '<span class="status status-failed">Failed</span>' in body


def test_search_filters_and_htmx_gets_the_table_only(builder_client, builder_user, workspace):
    flow_create(workspace=workspace, actor=builder_user, name="Invoice intake")
    flow_create(workspace=workspace, actor=builder_user, name="Helpdesk routing")
    full = builder_client.get(page(workspace), {"q": "invoice"}).content.decode()
    assert "Invoice intake" in full and "Helpdesk routing" not in full
    partial = builder_client.get(
        page(workspace), {"q": "helpdesk"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="flow-results"
    ).content.decode()
    assert partial.lstrip().startswith('<div id="flow-results">')
    assert "Helpdesk routing" in partial and "Invoice intake" not in partial
    assert "<html" not in partial


def test_create_blank_flow_opens_the_editor(builder_client, workspace):
    response = builder_client.post(page(workspace, "new/"), {"name": "Refunds"})
    flow = Flow.objects.get(workspace=workspace, name="Refunds")
    assert response.status_code == 302
    assert response["Location"] == page(workspace, f"{flow.id}/")
    assert [n["type"] for n in flow.draft_definition["nodes"]] == ["trigger.manual"]
    editor = builder_client.get(response["Location"]).content.decode()
    assert 'id="flow-editor"' in editor
    assert f'data-flow-id="{flow.id}"' in editor
    assert 'data-can-edit="true"' in editor


def test_create_from_template(builder_client, workspace, one_template):
    listing = builder_client.get(page(workspace)).content.decode()
    assert "Use template Doubler template" in listing
    assert "Needs blocks not installed yet: model.classify" in listing
    response = builder_client.post(page(workspace, "new/"), {"template": "doubler"})
    flow = Flow.objects.get(workspace=workspace)
    assert response.status_code == 302
    assert flow.name == "Doubler template"
    assert [n["id"] for n in flow.draft_definition["nodes"]] == ["start", "calc"]


def test_unknown_template_creates_nothing(builder_client, workspace, one_template):
    response = builder_client.post(page(workspace, "new/"), {"template": "nope"}, follow=True)
    assert "That template does not exist" in response.content.decode()
    assert not Flow.objects.exists()


def test_duplicate_and_archive(builder_client, builder_user, workspace):
    flow = flow_create(workspace=workspace, actor=builder_user, name="Claims")
    assert builder_client.post(page(workspace, f"{flow.id}/duplicate/")).status_code == 302
    copy = Flow.objects.get(name="Claims (copy)")
    assert copy.draft_definition["nodes"] == flow.draft_definition["nodes"]
    assert builder_client.post(page(workspace, f"{flow.id}/archive/")).status_code == 302
    flow.refresh_from_db()
    assert flow.status == FlowStatus.ARCHIVED
    listing = builder_client.get(page(workspace)).content.decode()
    assert "Claims (copy)" in listing and ">Claims</a>" not in listing
    archived = builder_client.get(page(workspace), {"archived": "1"}).content.decode()
    assert ">Claims</a>" in archived


def test_get_is_refused_for_actions(builder_client, builder_user, workspace):
    flow = flow_create(workspace=workspace, actor=builder_user, name="Claims")
    assert builder_client.get(page(workspace, f"{flow.id}/archive/")).status_code == 405
    assert builder_client.get(page(workspace, "new/")).status_code == 405


def test_reviewer_sees_flows_read_only(reviewer_client, builder_user, workspace):
    flow = flow_create(workspace=workspace, actor=builder_user, name="Claims")
    listing = reviewer_client.get(page(workspace)).content.decode()
    assert ">Claims</a>" in listing
    assert "New blank flow" not in listing and "Duplicate" not in listing
    editor = reviewer_client.get(page(workspace, f"{flow.id}/")).content.decode()
    assert 'data-can-edit="false"' in editor and 'data-can-publish="false"' in editor
    assert reviewer_client.post(page(workspace, "new/"), {"name": "X"}).status_code == 403
    assert reviewer_client.post(page(workspace, f"{flow.id}/archive/")).status_code == 403
    flow.refresh_from_db()
    assert flow.status == FlowStatus.DRAFT


def test_other_workspace_flows_are_not_found(builder_client, outsider, other_workspace, workspace):
    theirs = flow_create(workspace=other_workspace, actor=outsider, name="Secret")
    assert builder_client.get(page(workspace, f"{theirs.id}/")).status_code == 404
    assert builder_client.post(page(workspace, f"{theirs.id}/archive/")).status_code == 404
    assert builder_client.post(page(workspace, f"{theirs.id}/duplicate/")).status_code == 404
    assert builder_client.get(page(other_workspace)).status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == FlowStatus.DRAFT
    assert "Secret" not in builder_client.get(page(workspace)).content.decode()


def test_anonymous_is_sent_to_log_in(client, workspace):
    response = client.get(page(workspace))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def _upload(name: str, content: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content, content_type="application/json")


def test_import_a_flow_file(builder_client, workspace):
    content = json.dumps(TEMPLATE).encode()
    response = builder_client.post(
        page(workspace, "import/"), {"file": _upload("doubler.flow.json", content)}
    )
    flow = Flow.objects.get(workspace=workspace)
    assert response.status_code == 302 and response["Location"] == page(workspace, f"{flow.id}/")
    assert flow.name == "Doubler template"


def test_an_imported_name_is_trimmed_and_cut_to_what_a_flow_holds(builder_client, workspace):
    for name in ("  " + "N" * 500, "   "):
        content = json.dumps({**TEMPLATE, "name": name}).encode()
        response = builder_client.post(
            page(workspace, "import/"), {"file": _upload("long.flow.json", content)}
        )
        assert response.status_code == 302
    long, blank = Flow.objects.filter(workspace=workspace).order_by("created_at")
    assert long.name == "N" * 200 and blank.name == "Imported flow"


def test_import_of_a_broken_file_lists_problems_and_creates_nothing(builder_client, workspace):
    foreign = {"schema": "other/thing@1", "name": "<b>x</b>", "nodes": [{"id": "Bad id"}]}
    response = builder_client.post(
        page(workspace, "import/"),
        {"file": _upload("x.flow.json", json.dumps(foreign).encode())},
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert "Nothing was imported" in body
    assert "&#x27;schema&#x27; must be" in body
    not_json = builder_client.post(
        page(workspace, "import/"), {"file": _upload("x.flow.json", b"{nope")}
    )
    assert not_json.status_code == 400 and "not valid JSON" in not_json.content.decode()
    assert not Flow.objects.exists()
