"""Importing a flow file for a flow that exists updates its draft instead of copying it."""

from __future__ import annotations

from apps.flows.models import Flow
from apps.flows.services import flow_import
from tests.flows.test_publish_requests import SAFE
from tests.runs.helpers import node


def test_importing_a_file_for_an_existing_flow_makes_a_new_draft_revision(workspace, builder_user):
    first = flow_import(workspace=workspace, actor=builder_user, document=SAFE)
    changed = {**SAFE, "nodes": [SAFE["nodes"][0], node("set", "transform.set", values={"a": "2"})]}

    again = flow_import(workspace=workspace, actor=builder_user, document=changed)

    assert again.pk == first.pk and Flow.objects.filter(workspace=workspace).count() == 1
    assert again.draft_revision == first.draft_revision + 1
    assert again.draft_definition["nodes"][1]["config"] == {"values": {"a": "2"}}
    other = flow_import(workspace=workspace, actor=builder_user, document=changed, slug="copy")
    assert other.pk != first.pk
