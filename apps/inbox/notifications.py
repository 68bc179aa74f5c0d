"""Email for new and escalated review tasks.

A workspace turns it on by creating an SMTP connection named ``notifications`` (Settings →
Connections); without one, reviewers get the live toast in the inbox only. Mail is sent by a
Celery task after the task's transaction commits, so a slow or failing SMTP server never
holds up or fails the run: the task is in the inbox either way.
"""

from __future__ import annotations

import logging
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.urls import reverse

from apps.accounts.models import Membership, Role
from apps.blocks.base import BlockError
from apps.connectors.email import client
from apps.connectors.services import WorkspaceConnections

from .models import ReviewTask

logger = logging.getLogger(__name__)

NOTIFICATION_CONNECTION = "notifications"


def task_recipients(task: ReviewTask) -> list[str]:
    """Email addresses of whoever may decide: the named users and the members with the
    assigned role (admins for any role), never the person who started the run."""
    members = Membership.objects.filter(workspace_id=task.workspace_id, user__is_active=True)
    if task.requested_by_id is not None:
        members = members.exclude(user_id=task.requested_by_id)
    who = Q(user__in=task.assignee_users.all()) | Q(user__in=task.assignee_groups.values("members"))
    if task.assignee_role:
        who |= Q(role=task.assignee_role) | Q(role=Role.ADMIN)
    addresses = (
        members.filter(who).exclude(user__email="").values_list("user__email", flat=True).distinct()
    )
    return sorted(addresses)


def task_message(task: ReviewTask, *, sender: str, recipients: list[str]) -> EmailMessage:
    link = settings.SITE_URL.rstrip("/") + reverse(
        "inbox:detail", kwargs={"workspace_slug": task.workspace.slug, "task_id": task.id}
    )
    escalated = " (escalated)" if task.escalated_at else ""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = f"Review needed{escalated}: {task.title}"
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="flowgate.local")
    due = f"Due: {task.due_at:%Y-%m-%d %H:%M} UTC\n" if task.due_at else ""
    message.set_content(
        f"{task.title}\n\n{task.description}\n\n{due}Open it in the inbox: {link}\n"
    )
    return message


def task_notify(*, task_id: Any) -> str:
    """Email the task's deciders. Returns what happened: ``sent``, ``not_configured`` or
    ``no_recipients``. Raises ``client.SmtpFailure`` when the server refuses or fails."""
    task = ReviewTask.objects.select_related("workspace").get(pk=task_id)
    try:
        connection = WorkspaceConnections(task.workspace_id).get(
            NOTIFICATION_CONNECTION, type="smtp"
        )
    except BlockError as error:
        logger.debug("no email for task %s: %s", task.id, error)
        return "not_configured"
    recipients = task_recipients(task)
    if not recipients:
        return "no_recipients"
    message = task_message(task, sender=connection.config.from_address, recipients=recipients)
    client.send(connection.config, connection.secrets, message)
    return "sent"
