"""Concurrent requests for the same language model version share forward passes
(``workers/serving/lm_batching.py``): against the real model service and the real trained
GPT-2-style model, concurrent greedy answers are the texts a service without batching
gives the same requests one by one, and the service reports fewer forward passes than
decode steps."""

from __future__ import annotations

import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from apps.mlmodels.training import SUPPORT_WRITER_GPT
from studio.processes import model_service_process
from tests.support.model_stack import _start
from tests.support.processes import free_ports, stop_process_group

pytestmark = pytest.mark.slow

ISSUES = [
    "the invoice export is failing",
    "my password reset mail never came",
    "checkout is slow since this morning",
    "the mobile app crashes on login",
    "can I change the billing address",
    "the dashboard shows no data today",
]


def answer(url: str, issue: str, *, stream: bool = False) -> str:
    body = {
        "model": SUPPORT_WRITER_GPT,
        "messages": [{"role": "user", "content": issue}],
        "max_tokens": 16,
        "stream": stream,
    }
    if not stream:
        response = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)
        assert response.status_code == 200, response.text
        return str(response.json()["choices"][0]["message"]["content"])
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=60) as response:
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    chunks = [json.loads(event) for event in events[:-1]]
    return "".join(chunk["choices"][0]["delta"]["content"] for chunk in chunks)


def counters(url: str) -> dict:
    loaded = httpx.post(f"{url}/info", json={}, timeout=30).json()["loaded"]
    [gpt] = [entry for entry in loaded if entry["model"] == SUPPORT_WRITER_GPT]
    return gpt


@pytest.fixture
def unbatched_service(model_stack, transformers_language_model):
    """A second model service on the same registry with batching off."""
    [port] = free_ports(1)
    url = f"http://127.0.0.1:{port}"
    spec = model_service_process(service_url=url, tracking_uri=model_stack.mlflow.url)
    spec = dataclasses.replace(
        spec, environment={**spec.environment, "FLOWGATE_LM_BATCH_SIZE": "1"}
    )
    service = _start(spec, url)
    try:
        service.wait("/readyz")
        yield url
    finally:
        stop_process_group(service.process)


def test_concurrent_requests_share_forward_passes_and_answer_as_one_by_one(
    model_stack, transformers_language_model, unbatched_service
):
    url = model_stack.service.url
    alone = [answer(unbatched_service, issue) for issue in ISSUES]
    off = counters(unbatched_service)
    assert off["batch_size"] == 1 and off["forward_passes"] == off["decode_steps"]
    before = counters(url)
    with ThreadPoolExecutor(len(ISSUES)) as pool:
        together = list(
            pool.map(lambda pair: answer(url, pair[1], stream=pair[0] % 2 == 1), enumerate(ISSUES))
        )
    after = counters(url)
    assert together == alone
    steps = after["decode_steps"] - before["decode_steps"]
    passes = after["forward_passes"] - before["forward_passes"]
    assert steps > 0 and passes < steps
    assert 1 < after["largest_batch"] <= after["batch_size"]
