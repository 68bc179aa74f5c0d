"""Start-up with a bad environment: one line naming the variable, never a traceback. And the
production settings pass Django's deployment checklist."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest

from tests.support.processes import REPOSITORY_ROOT


def manage(*arguments: str, **environment: str) -> subprocess.CompletedProcess[str]:
    """Run manage.py with the production settings module and exactly the given variables
    (plus PATH and the database/Redis addresses of this test run)."""
    base = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "studio.settings.base",
        "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1/flowgate"),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
    }
    return subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        env={**base, **environment},
        timeout=120,
    )


PRODUCTION = {
    "FLOWGATE_ENV": "production",
    "SECRET_KEY": secrets.token_urlsafe(64),
    "FLOWGATE_ENCRYPTION_KEY": secrets.token_urlsafe(32),
    "ALLOWED_HOSTS": "flowgate.example.com",
}


@pytest.mark.parametrize(
    ("environment", "named"),
    [
        ({**PRODUCTION, "SECRET_KEY": ""}, "SECRET_KEY"),
        ({**PRODUCTION, "FLOWGATE_ENCRYPTION_KEY": ""}, "FLOWGATE_ENCRYPTION_KEY"),
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG"),
        ({"FLOWGATE_ENV": "staging"}, "FLOWGATE_ENV"),
        ({"DATABASE_URL": "mysql://db/flowgate"}, "DATABASE_URL"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL"),
        ({"LOGIN_FAILURE_LIMIT": "three"}, "LOGIN_FAILURE_LIMIT"),
        ({"SECRET_KEY_FILE": "/nonexistent/secret"}, "SECRET_KEY_FILE"),
        ({"MODEL_COSTS": "claim-fraud=cheap"}, "MODEL_COSTS"),
        ({"MODEL_COSTS": "=0.1"}, "MODEL_COSTS"),
        ({"DRAIN_SECONDS": "90"}, "DRAIN_SECONDS"),
        ({"DRAIN_SECONDS": "0"}, "DRAIN_SECONDS"),
        ({"RATE_LIMIT_API": "lots"}, "RATE_LIMIT_API"),
        ({"RATE_LIMIT_WEBHOOK": "10/0"}, "RATE_LIMIT_WEBHOOK"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_bad_environment_stops_start_up_with_one_line_naming_the_variable(environment, named):
    result = manage("check", **environment)

    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("flowgate: configuration error: ")
    assert named in lines[0]


def test_production_settings_pass_the_deployment_checklist():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_turns_on_transport_security():
    script = (
        "from django.conf import settings as s; "
        "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, "
        "s.SECURE_HSTS_SECONDS > 0)"
    )
    result = manage("shell", "-c", script, **PRODUCTION)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].split() == ["False", "True", "True", "True", "True"]
