"""The demo's GPT-2-style model: trained in the model service's own environment, registered
in the real MLflow with the transformers flavor, served by the real BentoML service through
the same OpenAI-compatible API and decoding as the toy, and called by ai.generate in a real
flow run on a worker. Guided decoding for both language models:
``test_language_serving.py``."""

from __future__ import annotations

import json

import httpx
import pytest

from apps.audit.models import AuditEvent
from apps.mlmodels.training import SUPPORT_WRITER_GPT
from tests.mlmodels.test_flow_run import run_draft_reply

pytestmark = pytest.mark.slow


def chat(url: str, **body) -> httpx.Response:
    body.setdefault("model", SUPPORT_WRITER_GPT)
    body.setdefault("messages", [{"role": "user", "content": "production is down"}])
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)


def test_the_model_is_registered_with_the_transformers_flavor_and_gate_metrics(
    model_stack, transformers_language_model
):
    import mlflow
    from mlflow.models import get_model_info

    mlflow.set_tracking_uri(model_stack.mlflow.url)
    mlflow.set_registry_uri(model_stack.mlflow.url)
    assert transformers_language_model.version == "1"
    assert {"accuracy", "bits_per_char"} <= set(transformers_language_model.metrics)
    info = get_model_info(f"models:/{SUPPORT_WRITER_GPT}/1")
    assert "transformers" in info.flavors
    assert info.flavors["transformers"]["task"] == "text-generation"
    assert info.metadata["flowgate_kind"] == "language"


def test_chat_completions_are_served_by_alias_with_token_counts(
    model_stack, transformers_language_model
):
    answer = chat(model_stack.service.url, max_tokens=12)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["flowgate"]["version"] == "1" and body["flowgate"]["alias"] == "production"
    assert body["flowgate"]["context_length"] == 256
    choice = body["choices"][0]
    assert choice["message"]["content"] and choice["finish_reason"] in ("stop", "length")
    usage = body["usage"]
    assert 0 < usage["completion_tokens"] <= 12
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    # Tokens are BPE pieces, not characters.
    assert usage["prompt_tokens"] < len("user: production is down\nassistant: ")


def test_stop_sequences_and_streaming_give_the_same_text_as_the_plain_answer(
    model_stack, transformers_language_model
):
    url = model_stack.service.url
    whole = chat(url, max_tokens=20).json()["choices"][0]["message"]["content"]
    request = {"model": SUPPORT_WRITER_GPT, "max_tokens": 20, "stream": True}
    request["messages"] = [{"role": "user", "content": "production is down"}]
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=request, timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert "".join(c["choices"][0]["delta"]["content"] for c in chunks) == whole
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")
    stop = whole.strip()[2:4]
    stopped = chat(url, max_tokens=20, stop=[stop]).json()["choices"][0]
    assert stopped["finish_reason"] == "stop"
    assert stopped["message"]["content"] == whole[: whole.index(stop)]


def test_a_prompt_over_the_context_length_is_a_400_naming_it(
    model_stack, transformers_language_model
):
    answer = chat(model_stack.service.url, messages=[{"role": "user", "content": "hi " * 300}])
    assert answer.status_code == 400
    assert "context length is 256" in answer.json()["error"]["message"]


def test_a_flow_run_drafts_a_reply_with_the_transformers_model_on_a_worker(
    transactional_db,
    workspace,
    builder_user,
    model_stack,
    transformers_language_model,
    start_worker,
):
    start_worker(environment={"MODEL_SERVICE_URL": model_stack.service.url})
    run, draft = run_draft_reply(workspace, builder_user, SUPPORT_WRITER_GPT, max_tokens=16)
    assert draft.output["text"]
    assert draft.meta["model"] == SUPPORT_WRITER_GPT and draft.meta["model_version"] == "1"
    assert 0 < draft.meta["usage"]["completion"] <= 16
    [decision] = AuditEvent.objects.filter(action="decision.model", object_id=str(run.id))
    assert decision.data["meta"]["model_version"] == "1"
