"""Settings → Data in a real browser: an admin classifies fields as PII and sets the
retention; the page shows what is classified now."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from apps.audit.models import DataSettings
from tests.e2e.conftest import ARTIFACTS, log_in


def test_admin_classifies_fields_and_sets_retention(page: Page, admin_user, workspace):
    log_in(page, "ada")
    page.goto("/w/acme/settings/")
    page.get_by_role("link", name="Data settings").click()
    expect(page.get_by_role("heading", name="Data", exact=True)).to_be_visible()
    expect(page.get_by_label("Keep run data (days)")).to_have_value("90")

    page.get_by_label("Sensitive fields (PII)").fill("email\nssn\ndate_of_birth")
    page.get_by_label("Keep run data (days)").fill("30")
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_text("Data settings saved.")).to_be_visible()
    expect(page.get_by_text("Classified now:")).to_contain_text("date_of_birth")
    expect(page.get_by_label("Keep run data (days)")).to_have_value("30")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "settings-data.png"), full_page=True)
    saved = DataSettings.objects.get(workspace=workspace)
    assert saved.sensitive_fields == ["date_of_birth", "email", "ssn"]
    assert saved.retention_days == 30
