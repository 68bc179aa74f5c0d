"""Which driver runs a SQL block for a connection type."""

from __future__ import annotations

from typing import cast

from . import mysql, postgres
from .base import SqlDriver

_DRIVERS: dict[str, SqlDriver] = {
    "postgres": cast(SqlDriver, postgres),
    "mysql": cast(SqlDriver, mysql),
}
CONNECTION_TYPES = tuple(_DRIVERS)


def driver_for(connection_type: str) -> SqlDriver:
    return _DRIVERS[connection_type]
