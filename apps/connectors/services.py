"""Creating, changing, testing and deleting connections, and handing them to blocks.

Secrets are write-only: services accept them, store them encrypted (``crypto.py``) and
never return them; what callers may see is which secret fields are set. Every change is
audited without secret values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from pydantic import ValidationError

from apps.audit.services import audit_record
from apps.blocks.base import BlockError
from apps.core.egress import MAX_ALLOWLIST_ENTRIES, allowlist_entry_check
from apps.core.http import egress_allowed

from .crypto import SecretsUnreadable, decrypt_secrets, encrypt_secrets, reencrypt
from .models import Connection, EgressSettings
from .selectors import egress_allowlist_get
from .types import (
    ConnectionHandle,
    ConnectionTypeError,
    TestOutcome,
    connection_type_get,
)


class ConnectionInvalid(Exception):
    """The connection cannot be saved as given; ``fields`` maps field names to messages."""

    def __init__(self, message: str, fields: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


def _validated_config(type_key: str, config: Mapping[str, Any]) -> dict[str, Any]:
    try:
        connection_type = connection_type_get(type_key)
    except ConnectionTypeError as error:
        raise ConnectionInvalid(str(error), {"type": str(error)}) from None
    try:
        model = connection_type.Config.model_validate(dict(config))
    except ValidationError as error:
        raise ConnectionInvalid("the connection settings are not valid", _fields(error)) from None
    return model.model_dump(mode="json")


def _fields(error: ValidationError) -> dict[str, str]:
    """Field name → message, without pydantic's "Value error, " prefix."""
    return {
        ".".join(str(part) for part in item["loc"]) or "config": item["msg"].removeprefix(
            "Value error, "
        )
        for item in error.errors()
    }


def _settings_problem(error: ValidationError) -> str:
    return "the settings are not valid: " + "; ".join(
        f"{name}: {message}" for name, message in _fields(error).items()
    )


def _clean_secrets(type_key: str, secrets: Mapping[str, str | None]) -> dict[str, str]:
    allowed = set(connection_type_get(type_key).secret_names())
    unknown = set(secrets) - allowed
    if unknown:
        raise ConnectionInvalid(
            f"unknown secret field(s): {', '.join(sorted(unknown))}",
            {name: "not a secret of this connection type" for name in unknown},
        )
    return {name: value for name, value in secrets.items() if value}


def _missing_required(type_key: str, secrets: Mapping[str, str]) -> dict[str, str]:
    return {
        field.name: "This secret is required."
        for field in connection_type_get(type_key).secret_fields
        if field.required and not secrets.get(field.name)
    }


def connection_secret_names(connection: Connection) -> list[str]:
    """Names of the secret fields that hold a value (never the values)."""
    return sorted(
        name for name, value in decrypt_secrets(connection.secrets_encrypted).items() if value
    )


def _audit(connection: Connection, actor: Any, action: str, summary: str) -> None:
    audit_record(
        workspace_id=connection.workspace_id,
        action=action,
        actor=actor,
        object_type="connection",
        object_id=connection.pk,
        summary=summary,
        data={
            "name": connection.name,
            "type": connection.type,
            "config": connection.config,
            "secrets_set": connection_secret_names(connection),
        },
    )


@transaction.atomic
def connection_create(
    *,
    workspace: Any,
    actor: Any,
    name: str,
    type: str,
    config: Mapping[str, Any],
    secrets: Mapping[str, str | None],
    description: str = "",
) -> Connection:
    """Create a connection. Raises ConnectionInvalid for a bad type, settings, missing
    required secret or a name already used in the workspace."""
    clean_config = _validated_config(type, config)
    clean_secrets = _clean_secrets(type, secrets)
    missing = _missing_required(type, clean_secrets)
    if missing:
        raise ConnectionInvalid("a required secret is missing", missing)
    connection = Connection(
        workspace=workspace,
        name=name,
        type=type,
        description=description,
        config=clean_config,
        secrets_encrypted=encrypt_secrets(clean_secrets) if clean_secrets else "",
        created_by=actor,
    )
    try:
        with transaction.atomic():
            connection.save()
    except IntegrityError:
        raise ConnectionInvalid(
            f"a connection named {name!r} already exists", {"name": "This name is taken."}
        ) from None
    _audit(connection, actor, "connection.create", f"Created connection {name} ({type})")
    return connection


@transaction.atomic
def connection_update(
    *,
    connection: Connection,
    actor: Any,
    config: Mapping[str, Any] | None = None,
    secrets: Mapping[str, str | None] | None = None,
    clear_secrets: tuple[str, ...] = (),
    description: str | None = None,
) -> Connection:
    """Change settings and/or secrets. A blank or absent secret keeps the stored value;
    ``clear_secrets`` names secrets to remove. The name and type never change."""
    if config is not None:
        connection.config = _validated_config(connection.type, config)
    if description is not None:
        connection.description = description
    if secrets or clear_secrets:
        stored = decrypt_secrets(connection.secrets_encrypted)
        stored.update(_clean_secrets(connection.type, secrets or {}))
        for name in _clean_secrets(connection.type, dict.fromkeys(clear_secrets, "x")):
            stored.pop(name, None)
        missing = _missing_required(connection.type, stored)
        if missing:
            raise ConnectionInvalid("a required secret is missing", missing)
        connection.secrets_encrypted = encrypt_secrets(stored) if stored else ""
    connection.save()
    _audit(connection, actor, "connection.update", f"Changed connection {connection.name}")
    return connection


@transaction.atomic
def connection_delete(*, connection: Connection, actor: Any) -> None:
    _audit(connection, actor, "connection.delete", f"Deleted connection {connection.name}")
    connection.delete()


def connection_test(*, connection: Connection) -> TestOutcome:
    """Try the real server with the stored settings and secrets; record and return the
    outcome. Never raises for a failing server: the outcome says what failed."""
    connection_type = connection_type_get(connection.type)
    try:
        config = connection_type.Config.model_validate(connection.config)
        with egress_allowed(egress_allowlist_get(workspace_id=connection.workspace_id)):
            outcome = connection_type.test(config, decrypt_secrets(connection.secrets_encrypted))
    except SecretsUnreadable as error:
        outcome = TestOutcome(False, "config", str(error))
    except ValidationError as error:
        outcome = TestOutcome(False, "config", _settings_problem(error))
    Connection.objects.filter(pk=connection.pk).update(
        last_tested_at=timezone.now(),
        last_test_ok=outcome.ok,
        last_test_message=outcome.message[:500],
    )
    connection.last_test_ok, connection.last_test_message = outcome.ok, outcome.message[:500]
    return outcome


def connection_keys_rotate() -> int:
    """Re-encrypt every connection's secrets under the current key; returns how many.
    Run after moving the old key to ``RETIRED_ENCRYPTION_KEYS``."""
    count = 0
    for connection in Connection.objects.exclude(secrets_encrypted="").iterator():
        with transaction.atomic():
            locked = Connection.objects.select_for_update().get(pk=connection.pk)
            locked.secrets_encrypted = reencrypt(locked.secrets_encrypted)
            locked.save(update_fields=["secrets_encrypted"])
        count += 1
    return count


class WorkspaceConnections:
    """What blocks get from ``ctx.service("connections")``: the workspace's connections by
    name, with decrypted secrets. Errors are BlockErrors a person can act on."""

    def __init__(self, workspace_id: Any) -> None:
        self.workspace_id = workspace_id

    def egress_allowlist(self) -> list[str]:
        """The workspace's egress allow-list (Settings → Egress), for ``egress_allowed``."""
        return egress_allowlist_get(workspace_id=self.workspace_id)

    def get(self, name: str, *, type: str | tuple[str, ...] | None = None) -> ConnectionHandle:
        connection = Connection.objects.filter(workspace_id=self.workspace_id, name=name).first()
        if connection is None:
            raise BlockError(f"no connection named {name!r} in this workspace", retryable=False)
        allowed = (type,) if isinstance(type, str) else type
        if allowed and connection.type not in allowed:
            raise BlockError(
                f"connection {name!r} is a {connection.type} connection; "
                f"this block needs {' or '.join(allowed)}",
                retryable=False,
            )
        connection_type = connection_type_get(connection.type)
        try:
            secrets = decrypt_secrets(connection.secrets_encrypted)
            config = connection_type.Config.model_validate(connection.config)
        except SecretsUnreadable as error:
            raise BlockError(f"connection {name!r}: {error}", retryable=False) from None
        except ValidationError as error:  # saved before a rule was added
            raise BlockError(
                f"connection {name!r}: {_settings_problem(error)}", retryable=False
            ) from None
        return ConnectionHandle(
            name=connection.name, type=connection.type, config=config, secrets=secrets
        )


def egress_settings_save(*, workspace: Any, actor: Any, allowlist: list[str]) -> EgressSettings:
    """Replace the workspace's egress allow-list, audited with before and after. Raises
    ConnectionInvalid naming the first entry that is not a host name or a narrow enough
    network. Takes effect for the next request: it is read at each use."""
    try:
        entries = sorted({allowlist_entry_check(entry) for entry in allowlist if entry.strip()})
    except ValueError as error:
        raise ConnectionInvalid(str(error), {"allowlist": str(error)}) from None
    if len(entries) > MAX_ALLOWLIST_ENTRIES:
        message = f"at most {MAX_ALLOWLIST_ENTRIES} entries"
        raise ConnectionInvalid(message, {"allowlist": message})
    with transaction.atomic():
        current, _ = EgressSettings.objects.select_for_update().get_or_create(workspace=workspace)
        before = list(current.allowlist)
        current.allowlist, current.updated_by = entries, actor
        current.save()
        audit_record(
            workspace_id=workspace.id,
            action="settings.egress_changed",
            actor=actor,
            object_type="workspace",
            object_id=workspace.id,
            summary=f"Egress allow-list: {len(entries)} entries",
            data={"before": {"allowlist": before}, "after": {"allowlist": entries}},
        )
    return current
