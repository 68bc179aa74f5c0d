"""Connection types: what a kind of connection stores and how it is tested.

A connection type is one class in its connector's folder (``email/connection.py``...): a
permanent ``key``, a ``title``, a pydantic ``Config`` of the non-secret settings (it drives
the form, the API and validation), its write-only ``secret_fields``, and ``test(...)``,
which tries the real server and says exactly what failed. Connectors register their types
in ``ConnectorsConfig.ready()`` with ``register_connection_type``.
"""

from __future__ import annotations

import inspect
import socket
import ssl
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import JsonDict


class ConnectionConfig(BaseModel):
    """Base of every type's ``Config``: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class SecretField:
    name: str
    label: str
    help: str = ""
    required: bool = False


@dataclass(frozen=True)
class TestOutcome:
    """The result of "Test connection". ``stage`` is one of ``ok``, ``dns``, ``refused``,
    ``timeout``, ``tls``, ``auth``, ``config``, ``url``, ``error``."""

    ok: bool
    stage: str
    message: str

    @property
    def http_status(self) -> int:
        """422 when the stored settings themselves cannot be used (a URL that cannot be
        read, settings that no longer validate): the person must fix them first; any other
        outcome is a report on the far end, 200."""
        return 422 if self.stage in ("url", "config") else 200


class ConnectionType(ABC):
    """A kind of connection. Subclasses are used as classes (never instantiated) and must
    implement ``test``; ``register_connection_type`` refuses one that does not."""

    key: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str] = ""
    Config: ClassVar[type[ConnectionConfig]] = ConnectionConfig
    secret_fields: ClassVar[tuple[SecretField, ...]] = ()

    @classmethod
    @abstractmethod
    def test(cls, config: Any, secrets: Mapping[str, str]) -> TestOutcome:
        """Connect with ``config`` and ``secrets`` and say which stage failed, if any."""

    @classmethod
    def secret_names(cls) -> tuple[str, ...]:
        return tuple(field.name for field in cls.secret_fields)


class ConnectionTypeError(Exception):
    pass


_types: dict[str, type[ConnectionType]] = {}


def register_connection_type(connection_type: type[ConnectionType]) -> None:
    if inspect.isabstract(connection_type):
        raise ConnectionTypeError(f"{connection_type.__name__} does not implement test()")
    if connection_type.key in _types:
        raise ConnectionTypeError(f"connection type {connection_type.key!r} is already registered")
    _types[connection_type.key] = connection_type


def connection_type_get(key: str) -> type[ConnectionType]:
    try:
        return _types[key]
    except KeyError:
        raise ConnectionTypeError(f"unknown connection type {key!r}") from None


def connection_types() -> list[type[ConnectionType]]:
    return sorted(_types.values(), key=lambda item: item.title)


def network_failure(error: BaseException, target: str) -> TestOutcome:
    """Say which network stage failed, in words a person can act on."""
    if isinstance(error, socket.gaierror):
        return TestOutcome(False, "dns", f"DNS: cannot resolve {target} ({error.strerror})")
    if isinstance(error, ConnectionRefusedError):
        return TestOutcome(False, "refused", f"connection refused by {target}")
    if isinstance(error, ssl.SSLError | ssl.CertificateError):
        return TestOutcome(False, "tls", f"TLS failed with {target}: {error}")
    if isinstance(error, TimeoutError | socket.timeout):
        return TestOutcome(False, "timeout", f"{target} did not answer in time")
    return TestOutcome(False, "error", f"could not reach {target}: {error}")


def connection_reference(connection_type: str, *more: str) -> JsonDict:
    """JSON Schema extras for a block's ``connection`` field, so the canvas can offer the
    workspace's connections of that type (``GET /api/w/<slug>/connections/``); a block that
    works with several types lists them all in ``connection_types``."""
    extras: JsonDict = {"format": "connection", "connection_type": connection_type}
    if more:
        extras["connection_types"] = [connection_type, *more]
    return extras


class ConnectionHandle:
    """A connection as a block sees it: its settings and its decrypted secrets.

    The secrets are only reachable through ``secret(name)``; the handle's repr never shows
    them, so logging a handle leaks nothing.
    """

    __slots__ = ("_secrets", "config", "name", "type")

    def __init__(self, *, name: str, type: str, config: Any, secrets: Mapping[str, str]):
        self.name, self.type, self.config = name, type, config
        self._secrets = dict(secrets)

    def secret(self, name: str, default: str = "") -> str:
        return self._secrets.get(name) or default

    @property
    def secrets(self) -> Mapping[str, str]:
        return dict(self._secrets)

    def __repr__(self) -> str:
        return f"<ConnectionHandle {self.name} ({self.type})>"
