"""Typed readers for settings that come from the environment.

Every setting has a safe local default. A secret may also be given as ``<NAME>_FILE``
(a path whose contents are the value), the convention of Docker and Kubernetes secrets.
An invalid value raises ``ConfigurationError`` naming the variable, which ``manage.py``
and the ASGI entry point turn into a one-line message instead of a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse


class ConfigurationError(Exception):
    """An environment variable is missing or has a value we cannot use."""


def env_str(name: str, default: str | None = None) -> str:
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        try:
            return Path(file_path).read_text().strip()
        except OSError as error:
            raise ConfigurationError(
                f"{name}_FILE: cannot read {file_path}: {error.strerror}"
            ) from None
    value = os.environ.get(name)
    if value is not None and value != "":
        return value
    if default is None:
        raise ConfigurationError(f"{name} is required but not set")
    return default


def env_choice(name: str, default: str, *, choices: tuple[str, ...]) -> str:
    value = env_str(name, default)
    if value not in choices:
        raise ConfigurationError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def local_secret(path: Path) -> str:
    """A random secret kept in ``path`` (created on first use): the local default for
    keys that production must set explicitly."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        import secrets

        path.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(48)
        path.write_text(value)
        path.chmod(0o600)
        return value


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigurationError(f"{name} must be true or false, got {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}, got {value}")
    return value


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    # Through env_str: a list may be a secret too (FLOWGATE_RETIRED_ENCRYPTION_KEYS_FILE).
    raw = env_str(name, "")
    if raw == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_prices(name: str) -> dict[str, float]:
    """``name=price`` pairs, comma-separated (``claim-fraud=0.0004,ticket-triage=0.0001``)."""
    prices = {}
    for item in env_list(name, []):
        key, _, raw = item.partition("=")
        try:
            price = float(raw)
        except ValueError:
            price = -1.0
        if not key.strip() or price < 0:
            raise ConfigurationError(f"{name}: expected name=price (price >= 0), got {item!r}")
        prices[key.strip()] = price
    return prices


def env_url(name: str, default: str, *, schemes: tuple[str, ...]) -> str:
    value = env_str(name, default)
    parsed = urlparse(value)
    if parsed.scheme not in schemes or not (parsed.hostname or parsed.path):
        expected = " or ".join(f"{scheme}://" for scheme in schemes)
        raise ConfigurationError(f"{name} must be a {expected} URL, got {value!r}")
    return value


def channel_layer(redis_url: str) -> dict[str, object]:
    """The Channels layer for live events: Redis pub/sub, where a group send is one PUBLISH
    (the list-based layer costs two round trips and a Lua script per group even when nobody
    listens); events are best effort, pages re-read Postgres. Pub/sub ignores database
    numbers, so the prefix carries it: deployments (and test runs) sharing a Redis through
    different databases do not hear each other."""
    database = urlparse(redis_url).path.strip("/") or "0"
    return {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [redis_url], "prefix": f"flowgate:{database}:"},
    }


def database_from_url(name: str, default: str) -> dict[str, object]:
    """Turn a ``postgres://user:password@host:port/db`` URL into Django's DATABASES entry."""
    url = urlparse(env_url(name, default, schemes=("postgres", "postgresql")))
    database = url.path.lstrip("/")
    if not database:
        raise ConfigurationError(f"{name} must name a database, got {url.geturl()!r}")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": database,
        "USER": url.username or "postgres",
        "PASSWORD": url.password or "",
        "HOST": url.hostname or "127.0.0.1",
        "PORT": str(url.port or 5432),
        **_connection_reuse(),
    }


def _connection_reuse() -> dict[str, object]:
    """How connections are reused. The ASGI web process runs each request's sync code in a
    thread of its own, so a per-thread persistent connection is a new Postgres backend per
    request (about 10 ms): it sets ``DATABASE_POOL=true`` and shares a psycopg pool.
    Workers and commands keep one persistent connection per process (a pool must not be
    inherited by forked Celery children)."""
    if env_bool("DATABASE_POOL", False):
        size = env_int("DATABASE_POOL_SIZE", 10, minimum=1)
        return {
            "CONN_MAX_AGE": 0,
            # A request waits this long at most for a connection (Postgres down: a 503).
            "OPTIONS": {
                "connect_timeout": 5,
                "pool": {"min_size": 1, "max_size": size, "timeout": 5},
            },
        }
    return {"CONN_MAX_AGE": 60, "CONN_HEALTH_CHECKS": True, "OPTIONS": {"connect_timeout": 5}}
