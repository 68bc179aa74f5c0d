"""The one SMTP client for connector blocks (smtplib): connect with a connection's
settings (implicit TLS, STARTTLS or plain), log in, send. Failures are ``SmtpFailure``
with the stage that failed and whether the message may have been accepted."""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any


class SmtpFailure(Exception):
    """``stage``: dns, refused, timeout, tls, auth, rejected, in_doubt, error.
    ``retryable`` is true only when the server certainly did not take the message."""

    def __init__(self, stage: str, message: str, *, retryable: bool):
        super().__init__(message)
        self.stage, self.message, self.retryable = stage, message, retryable


def _network_failure(error: BaseException, target: str) -> SmtpFailure:
    if isinstance(error, socket.gaierror):
        return SmtpFailure("dns", f"DNS: cannot resolve {target}", retryable=True)
    if isinstance(error, ConnectionRefusedError):
        return SmtpFailure("refused", f"connection refused by {target}", retryable=True)
    if isinstance(error, ssl.SSLError | ssl.CertificateError):
        return SmtpFailure("tls", f"TLS failed with {target}: {error}", retryable=False)
    if isinstance(error, TimeoutError | socket.timeout):
        return SmtpFailure("timeout", f"{target} did not answer in time", retryable=True)
    return SmtpFailure("error", f"could not talk to {target}: {error}", retryable=True)


def open_session(config: Any, secrets: Mapping[str, str]) -> smtplib.SMTP:
    """A logged-in SMTP session; the caller quits it. Raises SmtpFailure."""
    target = f"{config.host}:{config.port}"
    context = ssl.create_default_context()
    try:
        if config.security == "tls":
            session: smtplib.SMTP = smtplib.SMTP_SSL(
                config.host, config.port, timeout=config.timeout_seconds, context=context
            )
        else:
            session = smtplib.SMTP(config.host, config.port, timeout=config.timeout_seconds)
        session.ehlo()
        if config.security == "starttls":
            session.starttls(context=context)
            session.ehlo()
    except smtplib.SMTPNotSupportedError:
        raise SmtpFailure(
            "tls",
            f"{target} does not offer STARTTLS; choose another security setting",
            retryable=False,
        ) from None
    except (OSError, smtplib.SMTPException) as error:
        raise _network_failure(error, target) from None
    if config.username:
        try:
            _login(session, config.username, secrets.get("password", ""))
        except smtplib.SMTPAuthenticationError as error:
            session.close()
            raise SmtpFailure(
                "auth",
                f"authentication failed for {config.username} at {target}: "
                f"{error.smtp_code} {_text(error.smtp_error)}",
                retryable=False,
            ) from None
        except smtplib.SMTPNotSupportedError:
            session.close()
            raise SmtpFailure(
                "auth",
                f"{target} does not offer AUTH on this connection (try STARTTLS)",
                retryable=False,
            ) from None
        except (OSError, smtplib.SMTPException) as error:
            session.close()
            raise _network_failure(error, target) from None
    return session


def _login(session: smtplib.SMTP, username: str, password: str) -> None:
    # One mechanism, PLAIN when offered: smtplib's login() falls through to other
    # mechanisms after a refusal, which turns "wrong password" into a confusing timeout.
    if not session.has_extn("auth"):
        raise smtplib.SMTPNotSupportedError("AUTH not offered")
    if "PLAIN" in session.esmtp_features["auth"].upper().split():
        session.user, session.password = username, password
        session.auth("PLAIN", session.auth_plain)
    else:
        session.login(username, password)


def send(config: Any, secrets: Mapping[str, str], message: EmailMessage) -> dict[str, Any]:
    """Send ``message``; returns the refused recipients (empty when all were accepted)."""
    session = open_session(config, secrets)
    try:
        refused = session.send_message(message)
    except smtplib.SMTPRecipientsRefused as error:
        raise SmtpFailure(
            "rejected",
            f"every recipient was refused: {_recipients(error.recipients)}",
            retryable=False,
        ) from None
    except smtplib.SMTPResponseException as error:
        text = (
            error.smtp_error.decode(errors="replace")
            if isinstance(error.smtp_error, bytes)
            else error.smtp_error
        )
        # 4xx: the server did not take it and asks to try later; 5xx: it never will.
        raise SmtpFailure(
            "rejected",
            f"the server refused the message: {error.smtp_code} {text}",
            retryable=400 <= error.smtp_code < 500,
        ) from None
    except (OSError, smtplib.SMTPException) as error:
        raise SmtpFailure(
            "in_doubt",
            f"the connection failed while sending; the message may have been delivered: {error}",
            retryable=False,
        ) from None
    finally:
        try:
            session.quit()
        except (OSError, smtplib.SMTPException):
            session.close()
    return {
        address: f"{code} {text.decode(errors='replace')}"
        for address, (code, text) in refused.items()
    }


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _recipients(recipients: dict[str, tuple[int, bytes]]) -> str:
    return "; ".join(
        f"{address}: {code} {text.decode(errors='replace')}"
        for address, (code, text) in recipients.items()
    )


def text_message(*, sender: str, to: list[str], subject: str, body: str) -> EmailMessage:
    """A plain-text message with the headers every sender here sets."""
    from email.utils import formatdate, make_msgid

    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="flowgate.local")
    message.set_content(body)
    return message
