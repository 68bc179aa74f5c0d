"""The expression preview: a runaway expression neither blocks the web process nor runs
long, and each user's previews are rate-limited."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from apps.accounts.services import api_token_create
from apps.core import ratelimit
from tests.security.runaway import RUNAWAY_EXPRESSION
from tests.support.processes import studio_web_server

PREVIEW = "/api/w/acme/expressions/preview/"


@pytest.fixture
def web_server(transactional_db, test_database_url):
    """The studio's web process (uvicorn) on a loopback port, with an 8 s expression budget (wide, so a busy machine still shows the probe answering first)."""
    with studio_web_server(test_database_url, EXPRESSION_TIMEOUT_MS="8000") as url:
        yield url


def test_the_web_process_answers_while_a_runaway_preview_is_in_flight(
    web_server, workspace, builder_user
):
    secret = api_token_create(user=builder_user, workspace=workspace, name="canvas").secret
    finished = threading.Event()
    answer: dict[str, httpx.Response] = {}

    def preview() -> None:
        answer["preview"] = httpx.post(
            web_server + PREVIEW,
            json={"expression": RUNAWAY_EXPRESSION},
            headers={"Authorization": f"Bearer {secret}"},
            timeout=120,
        )
        finished.set()

    caller = threading.Thread(target=preview)
    caller.start()
    time.sleep(0.5)  # let the preview reach the evaluator (pacing, not an assertion)
    health = httpx.get(web_server + "/healthz", timeout=120)
    preview_was_still_running = not finished.is_set()
    caller.join(timeout=120)

    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert preview_was_still_running, "the health probe waited for the runaway expression"
    assert answer["preview"].status_code == 200  # a preview that shows an error succeeded
    assert answer["preview"].json()["error"]["message"] == (
        "ran longer than the 8 s evaluation budget"
    )


def test_previews_are_rate_limited_per_user(settings, monkeypatch, builder_client, reviewer_client):
    settings.FLOWGATE = {**settings.FLOWGATE, "RATE_LIMITS": {"preview": "3/3600"}}
    monkeypatch.setattr(ratelimit, "clock", lambda: 1_800_000_900.0)  # 15 min into a window
    for _ in range(3):
        response = builder_client.post(
            PREVIEW, {"expression": "1 + 1"}, content_type="application/json"
        )
        assert response.status_code == 200 and response.json() == {"value": 2}
    refused = builder_client.post(PREVIEW, {"expression": "1 + 1"}, content_type="application/json")
    assert refused.status_code == 429
    assert refused["Retry-After"] == str(4800 - 900)  # 4/3 of a window from its start
    assert refused.json()["error"]["code"] == "throttled"
    # another user has a budget of their own
    other = reviewer_client.post(PREVIEW, {"expression": "1 + 1"}, content_type="application/json")
    assert other.status_code == 200
