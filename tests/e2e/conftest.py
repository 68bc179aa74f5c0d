"""Browser tests: Playwright (sync API) driving Debian's Chromium against a real studio.

``studio_url`` (session) runs ``uvicorn studio.asgi:application`` (so WebSockets work) and a
real Celery worker against the pytest-django test database, on a port of the test range.
Every test here gets ``transactional_db`` automatically, so rows made by fixtures are
committed and the server sees them. ``page`` is a fresh browser context per test whose
relative URLs go to the studio; on failure a full-page screenshot is written to
``tests/e2e/artifacts/<test name>.png`` (and the browser console beside it). ``log_in(page, username)`` logs a persona in.

Chromium comes from Debian (``apt-get install chromium``); nothing downloads a browser.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from studio.celery import app as celery_app
from tests.factories import PERSONA_PASSWORD
from tests.support.processes import REPOSITORY_ROOT, studio_web_server
from tests.support.workers import WorkerProcess

E2E_QUEUE = f"test-e2e-{os.getpid()}"
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).parent / "artifacts"

# Playwright's sync API keeps an asyncio loop in this thread; the ORM calls made by
# fixtures between browser steps are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.path)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(autouse=True)
def _committed_data(transactional_db: None) -> Iterator[None]:
    """The server and worker read the database through their own connections.

    After the test (its pages closed first: this fixture is set up before them), wait for
    their transactions to end before the tables are emptied: a request the browser sent
    just before its page closed (a dashboard poll) still runs in the server, and its
    transaction, holding one table while it reads the next, deadlocked the TRUNCATE."""
    yield
    _wait_for_other_transactions(seconds=5)


def _wait_for_other_transactions(*, seconds: float) -> None:
    from django.db import connection

    # None open for 0.2 s: a request already received but not yet in its transaction when
    # first looked at (the page closed with it in flight) has started by then.
    deadline, quiet_since = time.monotonic() + seconds, None
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
                " AND xact_start IS NOT NULL"
            )
            if cursor.fetchone()[0] > 0:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= 0.2:
                return
            time.sleep(0.05)


@pytest.fixture(autouse=True)
def _e2e_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs a test starts itself go to the studio's worker, like the server's do."""
    monkeypatch.setitem(celery_app.conf, "task_default_queue", E2E_QUEUE)


@contextmanager
def serve_studio(test_database_url: str, port: int = 0, **environment: str) -> Iterator[str]:
    """Run the studio's web process (uvicorn, with its connection pool) on ``port``
    (default: a free one); yield its URL."""
    with studio_web_server(test_database_url, port, DATABASE_POOL="true", **environment) as url:
        yield url


@pytest.fixture(scope="package")
def studio_url(test_database_url: str) -> Iterator[str]:
    if not (REPOSITORY_ROOT / "static" / "dist" / "app.js").exists():
        pytest.fail("the front end is not built: run scripts/bootstrap.sh")
    # The server and its worker share a queue of their own (see tests/conftest.py).
    queue = {"CELERY_QUEUE": E2E_QUEUE}
    worker = WorkerProcess(database_url=test_database_url, environment=queue).start()
    try:
        with serve_studio(test_database_url, **queue) as url:
            yield url
    finally:
        worker.stop()


# Package scope: Playwright's sync API runs an event loop in this thread while it is
# started, which would break async_to_sync in the tests collected after this package.
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield browser
        browser.close()


@pytest.fixture
def open_page(request: pytest.FixtureRequest, browser: Browser) -> Iterator[Callable[[str], Page]]:
    """``open_page(base_url)``: a page in a fresh browser context (its own cookies, so two
    users can be logged in side by side). On failure each page is screenshotted."""
    opened: list[tuple[Page, list[str]]] = []

    def open_one(base_url: str) -> Page:
        context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 800})
        context.set_default_timeout(10_000)
        page = context.new_page()
        console: list[str] = []
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: console.append(f"page error: {error}"))
        opened.append((page, console))
        return page

    yield open_one
    call = getattr(request.node, "report_call", None)
    for index, (page, console) in enumerate(opened):
        if call is not None and call.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            name = re.sub(r"[^\w.-]+", "_", request.node.name) + (f"-{index}" if index else "")
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
            (ARTIFACTS / f"{name}.console.txt").write_text("\n".join(console))
        page.context.close()


@pytest.fixture
def page(open_page: Callable[[str], Page], studio_url: str) -> Page:
    return open_page(studio_url)


def log_in(page: Page, username: str, password: str = PERSONA_PASSWORD) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
