"""Settings → Connections in a real browser: an admin creates a Redis connection, the
secret is write-only, and "Test connection" answers in place (htmx)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.conf import settings
from playwright.sync_api import Page, expect

from apps.connectors.models import Connection
from tests.e2e.conftest import ARTIFACTS, log_in


def test_admin_creates_and_tests_a_connection(page: Page, admin_user):
    redis_url = urlsplit(settings.REDIS_URL)
    log_in(page, "ada")
    page.goto("/w/acme/settings/")
    page.get_by_role("link", name="Manage connections").click()
    expect(page.get_by_role("heading", name="Connections")).to_be_visible()
    page.get_by_role("link", name="Redis Streams").click()

    page.locator("#id_name").fill("events")
    page.get_by_label("Description").fill("Claims decisions")
    page.locator("#id_config_host").fill(redis_url.hostname)
    page.locator("#id_config_port").fill(str(redis_url.port or 6379))
    page.locator("#id_config_db").fill(redis_url.path.strip("/") or "0")
    page.get_by_label("Password").fill("s3cret-never-shown")
    page.get_by_role("button", name="Create connection").click()

    expect(page).to_have_url(re.compile(r"/w/acme/settings/connections/[0-9a-f-]+/$"))
    expect(page.locator("#id_secret_password")).to_have_value("")  # write-only
    assert "s3cret-never-shown" not in page.content()
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#test-result")).to_contain_text("Connected")
    expect(page.locator("#test-result")).to_contain_text("connected to Redis")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "connection-detail.png"), full_page=True)

    page.get_by_role("link", name="All connections").click()
    expect(page.get_by_role("link", name="events")).to_be_visible()
    expect(page.get_by_role("region", name="Your connections")).to_contain_text("ok")
    page.screenshot(path=str(ARTIFACTS / "connections.png"), full_page=True)
    assert Connection.objects.get(name="events").type == "redis"
