"""Test overrides: the real Postgres and Redis, on a Redis database of their own."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/14")
os.environ.setdefault("FLOWGATE_ENCRYPTION_KEY", "test-only-encryption-key")

from .base import *  # noqa: F403
from .base import FLOWGATE

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
AXES_FAILURE_LIMIT = 3
FLOWGATE["ENCRYPTION_KEY"] = "test-only-encryption-key"
# Generous limits so that suites making many calls are not throttled; tests of a limit
# lower it with the ``settings`` fixture.
FLOWGATE["RATE_LIMITS"] = {"api": "100000/60", "webhook": "100000/60", "preview": "100000/60"}
# "The next release" of tests/deploy/test_rolling_upgrade.py: one migration on runs_run that
# the test rolls back and applies under load (no models; makemigrations has nothing to add).
INSTALLED_APPS = [*INSTALLED_APPS, "tests.deploy.upgrade_release"]  # noqa: F405
