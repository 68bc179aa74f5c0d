"""A real SMTP server (aiosmtpd) on loopback that keeps what it receives."""

from __future__ import annotations

import email
from collections.abc import Iterator
from contextlib import contextmanager
from email import policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from .processes import free_port


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        parsed = email.message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 OK"


@contextmanager
def smtp_server(**options: object) -> Iterator[tuple[Controller, Mailbox]]:
    """``with smtp_server() as (controller, mailbox)``: ``controller.port`` listens on
    127.0.0.1; ``options`` go to aiosmtpd's Controller (e.g. an authenticator)."""
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(), **options)
    controller.start()
    try:
        yield controller, mailbox
    finally:
        controller.stop()


def notifications_connection(
    workspace, actor, port: int, sender: str = "Flowgate <team@acme.test>"
):  # type: ignore[no-untyped-def]
    """The workspace's SMTP connection named "notifications" (what task emails and
    invitations go through), pointed at ``smtp_server()``'s port."""
    from apps.connectors.services import connection_create

    return connection_create(
        workspace=workspace,
        actor=actor,
        name="notifications",
        type="smtp",
        config={"host": "127.0.0.1", "port": port, "security": "none", "from_address": sender},
        secrets={},
    )
