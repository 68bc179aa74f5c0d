"""axe-core in the browser: no serious or critical findings on the main pages, and each
page usable at 1024 px (nothing wider than the window)."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page

from apps.flows import services
from apps.policies.services import policy_create
from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.services import run_start
from tests.e2e.conftest import log_in
from tests.e2e.test_studio import _screenshot
from tests.inbox.helpers import start_waiting_run, task_of
from tests.runs.helpers import definition, node
from tests.support.processes import REPOSITORY_ROOT

AXE = (REPOSITORY_ROOT / "node_modules" / "axe-core" / "axe.min.js").read_text()
SEVERE = ("serious", "critical")
REGO = 'package limits\n\nimport rego.v1\n\ndefault route := "review"\n'


def axe_findings(page: Page) -> list[dict]:
    """Serious and critical axe findings on the page as it stands (WCAG 2.x A and AA).
    Evaluated through the debugging protocol, so the page's CSP does not block it."""
    page.evaluate(AXE)
    return page.evaluate(
        """async (severe) => {
          const result = await axe.run(document, {runOnly: ["wcag2a", "wcag2aa", "wcag21aa"]});
          return result.violations.filter((v) => severe.includes(v.impact)).map((v) => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")), count: v.nodes.length,
          }));
        }""",
        list(SEVERE),
    )


def overflow(page: Page) -> int:
    """How far anything sticks out past the window's right edge, in pixels, unless a box
    that scrolls (or clips) sideways inside the window holds it."""
    return page.evaluate(
        """() => {
          const width = document.documentElement.clientWidth;
          const held = (element) => {
            for (let box = element.parentElement; box; box = box.parentElement) {
              const style = getComputedStyle(box).overflowX;
              if (style !== "visible" && box.getBoundingClientRect().right <= width + 1) return true;
            }
            return false;
          };
          let worst = 0;
          for (const element of document.querySelectorAll("body *")) {
            const right = element.getBoundingClientRect().right;
            if (right > width + 1 && !held(element)) worst = Math.max(worst, right - width);
          }
          return Math.round(worst);
        }"""
    )


@pytest.fixture
def main_pages(workspace, builder_user, admin_user) -> list[str]:
    doubler = definition(
        [node("start", "trigger.manual"), node("calc", "transform.set", values={"x": "1"})],
        [("start", "calc")],
        name="Doubler",
    )
    flow = services.flow_create(
        workspace=workspace, actor=builder_user, name="Doubler", definition=doubler
    )
    services.flow_publish(flow=flow, actor=builder_user)
    run = run_start(flow=flow, trigger="manual", payload=envelope({}), enqueue=False).run
    advance(run.id)
    waiting = start_waiting_run(
        workspace, builder_user, {"claim": "C-1", "amount": 5, "customer": "Ada"}
    )
    task = task_of(waiting)
    policy_create(workspace=workspace, actor=admin_user, slug="limits", name="Limits", source=REGO)
    base = f"/w/{workspace.slug}"
    return [
        f"{base}/flows/",
        f"{base}/flows/{flow.id}/",
        f"{base}/runs/",
        f"{base}/runs/{run.id}/",
        f"{base}/runs/dead-letter/",
        f"{base}/inbox/",
        f"{base}/inbox/{task.id}/",
        f"{base}/policies/",
        f"{base}/policies/limits/",
        f"{base}/audit/",
        f"{base}/dashboard/",
        f"{base}/settings/",
        f"{base}/settings/connections/",
        f"{base}/settings/data/",
        "/docs/authoring/",
    ]


def test_the_main_pages_have_no_serious_accessibility_findings(page: Page, main_pages):
    log_in(page, "ada")
    found, errors = {}, []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    for path in main_pages:
        page.goto(path)
        page.wait_for_load_state("networkidle")
        findings = axe_findings(page)
        if findings:
            found[path] = findings
    assert found == {}, json.dumps(found, indent=1)
    assert errors == []  # nothing the CSP blocked, nothing that threw


def test_the_main_pages_fit_a_1024_px_window(page: Page, main_pages):
    page.set_viewport_size({"width": 1024, "height": 768})
    log_in(page, "ada")
    wide = {}
    for path in main_pages:
        page.goto(path)
        page.wait_for_load_state("networkidle")
        _screenshot(page, "1024" + path.replace("/", "-")[:60])
        if overflow(page) > 0:
            wide[path] = overflow(page)
        if "/flows/" in path and path.count("/") > 4:  # the editor: room to draw
            canvas = page.locator(".canvas").bounding_box()
            assert canvas is not None and canvas["width"] >= 600, canvas
    assert wide == {}


@pytest.mark.slow
def test_the_model_pages_have_no_serious_findings_and_fit_1024_px(
    open_page, test_database_url, workspace, admin_user, model_stack, trained_models
):
    """The Models list and a model page, against the real MLflow and model service."""
    from apps.mlmodels.training import CLAIM_FRAUD
    from tests.e2e.conftest import serve_studio

    with serve_studio(
        test_database_url,
        MLFLOW_TRACKING_URI=model_stack.mlflow.url,
        MODEL_SERVICE_URL=model_stack.service.url,
    ) as url:
        page = open_page(url)
        errors: list[str] = []
        page.on("console", lambda message: message.type == "error" and errors.append(message.text))
        log_in(page, "ada")
        found, wide = {}, {}
        for width in (1280, 1024):
            page.set_viewport_size({"width": width, "height": 800})
            for path in ("/w/acme/models/", f"/w/acme/models/{CLAIM_FRAUD}/"):
                page.goto(path)
                page.wait_for_load_state("networkidle")
                if width == 1024:
                    _screenshot(page, "1024" + path.replace("/", "-")[:60])
                    if overflow(page) > 0:
                        wide[path] = overflow(page)
                elif findings := axe_findings(page):
                    found[path] = findings
        assert found == {}, json.dumps(found, indent=1)
        assert wide == {}
        assert errors == []
