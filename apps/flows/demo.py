"""Demo content: every available gallery template as a published flow, ready to run."""

from __future__ import annotations

from typing import Any

from .gallery import template_definition, template_list
from .models import Flow
from .services import FlowError, flow_create, flow_publish


def seed_templates(*, workspace: Any, actor: Any) -> list[Flow]:
    """Create and publish the templates the workspace does not have yet (by name). A
    template whose policy, connection, model or sub-flow the workspace lacks stays a draft
    (pre-flight refuses to publish it), and is not returned."""
    created = []
    for template in template_list():
        if not template["available"]:
            continue
        if Flow.objects.filter(workspace=workspace, name=template["name"]).exists():
            continue
        flow = flow_create(
            workspace=workspace,
            actor=actor,
            name=template["name"],
            definition=template_definition(template["key"]),
        )
        try:
            flow_publish(flow=flow, actor=actor, note="From the templates gallery")
        except FlowError:
            continue  # its Problems panel says what the workspace lacks
        created.append(flow)
    return created
