"""Fixtures shared by every test. Tests run against the real Postgres and Redis.

Personas (function-scoped, each needs the database)
    ``workspace`` ("Acme", slug ``acme``) and ``other_workspace`` ("Globex", ``globex``).
    ``admin_user``, ``builder_user``, ``reviewer_user``: members of ``workspace`` with that role.
    ``outsider``: admin of ``other_workspace`` only, so every ``workspace`` object must be a 404
    for them. ``admin_client``, ``builder_client``, ``reviewer_client``, ``outsider_client``:
    Django test clients logged in as each (these replace pytest-django's ``admin_user`` and
    ``admin_client``). More users and workspaces: ``tests.factories``; every persona's
    password is ``tests.factories.PERSONA_PASSWORD``.

Real Celery worker
    ``celery_worker`` is a ``tests.support.workers.WorkerProcess`` (one per session) running
    ``celery -A studio worker --pool=prefork --concurrency=1`` against the pytest-django test
    database and the tests' Redis; it has answered ``core.ping`` before the test starts. It
    reads a queue of its own, which is the default queue only during tests that request it:
    other tests' tasks stay queued, unrun. A task reads only committed rows, so tests that
    use it also request ``transactional_db``::

        def test_ping_is_answered(transactional_db, celery_worker):
            assert ping.delay("x").get(timeout=30) == "pong:x"

    To crash a worker mid-run, start your own with ``start_worker()`` (stopped at the end of
    the test): ``worker = start_worker(); ...; worker.kill(); start_worker()``.

Redis
    The tests' Redis database (``REDIS_URL``) is flushed once at the start of the session, so
    give each concurrent test run its own database number.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test import Client

from apps.accounts.models import Membership, Role, User, Workspace
from studio.celery import app as celery_app
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from tests.support.processes import database_url
from tests.support.workers import WorkerProcess

# model_stack, trained_models, registry_settings: a real MLflow and BentoML model service.
pytest_plugins = ["tests.support.model_stack"]


@pytest.fixture(scope="session", autouse=True)
def _flush_test_redis() -> None:
    redis.Redis.from_url(settings.REDIS_URL).flushdb()


# --- personas --------------------------------------------------------------------------
@pytest.fixture
def workspace(db: None) -> Workspace:
    return WorkspaceFactory(slug="acme", name="Acme")


@pytest.fixture
def other_workspace(db: None) -> Workspace:
    return WorkspaceFactory(slug="globex", name="Globex")


def _member(username: str, workspace: Workspace, role: Role) -> User:
    membership: Membership = MembershipFactory(
        user=UserFactory(username=username), workspace=workspace, role=role
    )
    return membership.user


@pytest.fixture
def admin_user(workspace: Workspace) -> User:
    return _member("ada", workspace, Role.ADMIN)


@pytest.fixture
def builder_user(workspace: Workspace) -> User:
    return _member("bea", workspace, Role.BUILDER)


@pytest.fixture
def reviewer_user(workspace: Workspace) -> User:
    return _member("rui", workspace, Role.REVIEWER)


@pytest.fixture
def outsider(other_workspace: Workspace) -> User:
    return _member("otto", other_workspace, Role.ADMIN)


def _client_for(user: User) -> Client:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


@pytest.fixture
def admin_client(admin_user: User) -> Client:
    return _client_for(admin_user)


@pytest.fixture
def builder_client(builder_user: User) -> Client:
    return _client_for(builder_user)


@pytest.fixture
def reviewer_client(reviewer_user: User) -> Client:
    return _client_for(reviewer_user)


@pytest.fixture
def outsider_client(outsider: User) -> Client:
    return _client_for(outsider)


# --- real processes --------------------------------------------------------------------
@pytest.fixture(scope="session")
def test_database_url(django_db_setup: None) -> str:
    """``DATABASE_URL`` of the pytest-django test database, for subprocesses."""
    return database_url(connection.settings_dict)


@pytest.fixture(scope="session")
def _shared_worker(test_database_url: str) -> Iterator[WorkerProcess]:
    queue = f"test-shared-{uuid.uuid4().hex[:8]}"
    worker = WorkerProcess(database_url=test_database_url, environment={"CELERY_QUEUE": queue})
    yield worker.start()
    worker.stop()


@pytest.fixture
def celery_worker(
    _shared_worker: WorkerProcess, monkeypatch: pytest.MonkeyPatch
) -> Iterator[WorkerProcess]:
    """The session's real worker. It reads a queue of its own, and only the tests that ask
    for it send tasks there: other tests' tasks are never run behind their backs (a worker
    writing while a test's database is being flushed deadlocks). A test ends once the
    worker has taken every message the test sent: a drain request left behind would claim
    the queued runs of the next test (which may mean to advance them itself)."""
    queue = _shared_worker.environment["CELERY_QUEUE"]
    monkeypatch.setitem(celery_app.conf, "task_default_queue", queue)
    yield _shared_worker
    broker = redis.Redis.from_url(settings.REDIS_URL)
    deadline = time.monotonic() + 10
    while broker.llen(queue) and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.fixture
def start_worker(test_database_url: str) -> Iterator[Callable[..., WorkerProcess]]:
    """``start_worker(**options)`` starts another real worker (see ``WorkerProcess``);
    every worker started this way is stopped when the test ends."""
    started: list[WorkerProcess] = []

    def start(**options: object) -> WorkerProcess:
        worker = WorkerProcess(database_url=test_database_url, **options)  # type: ignore[arg-type]
        started.append(worker)
        return worker.start()

    yield start
    for worker in started:
        worker.stop()
