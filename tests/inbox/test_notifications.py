"""New review tasks are emailed to their deciders through the workspace's SMTP connection
named "notifications" (a real SMTP server here); without one, nothing is sent."""

from __future__ import annotations

import pytest

from apps.inbox.notifications import task_notify
from tests.inbox.helpers import start_waiting_run, task_of
from tests.support.smtp import notifications_connection, smtp_server
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def mailbox(workspace, admin_user):
    with smtp_server() as (controller, mailbox):
        notifications_connection(
            workspace, admin_user, controller.port, sender="Flowgate <inbox@acme.test>"
        )
        yield mailbox


def test_a_new_task_is_emailed_to_its_deciders_but_not_the_requester(
    mailbox, workspace, builder_user, reviewer_user, admin_user
):
    task = task_of(start_waiting_run(workspace, builder_user))

    assert task_notify(task_id=task.id) == "sent"

    [(sender, recipients, message)] = mailbox.messages
    assert sender == "inbox@acme.test"
    assert sorted(recipients) == sorted([reviewer_user.email, admin_user.email])
    assert message["Subject"] == "Review needed: Claim C-17"
    assert f"/w/acme/inbox/{task.id}/" in message.get_content()


def test_without_a_notifications_connection_nothing_is_sent(workspace, builder_user):
    with smtp_server() as (_, mailbox):
        task = task_of(start_waiting_run(workspace, builder_user))
        assert task_notify(task_id=task.id) == "not_configured"
    assert mailbox.messages == []


def test_the_worker_emails_a_task_as_soon_as_the_flow_creates_it(
    mailbox, workspace, builder_user, reviewer_user, celery_worker
):
    start_waiting_run(workspace, builder_user)

    wait_for(lambda: mailbox.messages)
    [(_, recipients, message)] = mailbox.messages
    assert reviewer_user.email in recipients
    assert message["Subject"].startswith("Review needed")
