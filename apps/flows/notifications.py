"""Email the workspace's admins when a builder asks them to publish a flow, through the
SMTP connection named ``notifications`` (as review tasks are); without one, the request
waits in their inbox only. Sent by a Celery task after the request commits."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.urls import reverse

from apps.accounts.models import Membership, Role
from apps.blocks.base import BlockError
from apps.connectors.email import client
from apps.connectors.services import WorkspaceConnections

from .models import PublishRequest

CONNECTION = "notifications"


def publish_request_notify(*, request_id: Any) -> str:
    """``sent``, ``not_configured`` or ``no_recipients``; SmtpFailure when the server fails."""
    pr = PublishRequest.objects.select_related("workspace", "flow", "requested_by").get(
        pk=request_id
    )
    try:
        connection = WorkspaceConnections(pr.workspace_id).get(CONNECTION, type="smtp")
    except BlockError:
        return "not_configured"
    admins = (
        Membership.objects.filter(workspace_id=pr.workspace_id, role=Role.ADMIN)
        .filter(user__is_active=True)
        .exclude(user__email="")
    )
    if pr.requested_by_id is not None:
        admins = admins.exclude(user_id=pr.requested_by_id)
    recipients = sorted(admins.values_list("user__email", flat=True))
    if not recipients:
        return "no_recipients"
    link = settings.SITE_URL.rstrip("/") + reverse(
        "flows:request", kwargs={"workspace_slug": pr.workspace.slug, "request_id": pr.id}
    )
    what = f"roll back {pr.flow.name} to v{pr.rollback_to}" if pr.rollback_to else pr.flow.name
    message = client.text_message(
        sender=connection.config.from_address,
        to=recipients,
        subject=f"Publish request: {what}",
        body=f"{pr.requested_by or 'A builder'} asks you to publish {what}.\n\n"
        f"{pr.note}\n\nReview it: {link}\n",
    )
    client.send(connection.config, connection.secrets, message)
    return "sent"
