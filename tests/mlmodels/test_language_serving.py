"""The toy language model, registered in the real MLflow and served by the real BentoML
service through its OpenAI-compatible API: text, streaming, guided decoding, bad input."""

from __future__ import annotations

import json

import httpx
import jsonschema
import pytest

from apps.mlmodels.training import SUPPORT_WRITER, SUPPORT_WRITER_GPT

pytestmark = pytest.mark.slow


def chat(url: str, **body) -> httpx.Response:
    body.setdefault("messages", [{"role": "user", "content": "production is down"}])
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30)


def test_the_language_model_is_registered_with_metrics_and_served_by_alias(
    model_stack, language_models
):
    assert [v.version for v in language_models] == ["1", "2"]
    assert {"accuracy", "bits_per_char"} <= set(language_models[0].metrics)
    # The longer context (version 2) models the text better.
    assert language_models[1].metrics["bits_per_char"] < language_models[0].metrics["bits_per_char"]
    answer = chat(model_stack.service.url, model=SUPPORT_WRITER, max_tokens=40)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["object"] == "chat.completion"
    assert body["flowgate"]["version"] == "1" and body["flowgate"]["alias"] == "production"
    text = body["choices"][0]["message"]["content"]
    assert 0 < len(text) <= 40
    assert body["usage"]["completion_tokens"] == len(text)
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + len(text)
    pinned = chat(model_stack.service.url, model=f"{SUPPORT_WRITER}/2", max_tokens=5).json()
    assert pinned["flowgate"]["version"] == "2" and pinned["flowgate"]["alias"] == ""


def test_max_tokens_and_stop_sequences_end_the_answer(model_stack, language_models):
    url = model_stack.service.url
    short = chat(url, model=SUPPORT_WRITER, max_tokens=3).json()["choices"][0]
    assert len(short["message"]["content"]) == 3 and short["finish_reason"] == "length"
    full = chat(url, model=SUPPORT_WRITER, max_tokens=60).json()["choices"][0]["message"]
    stop = full["content"][5:7]
    stopped = chat(url, model=SUPPORT_WRITER, max_tokens=60, stop=[stop]).json()["choices"][0]
    assert stopped["finish_reason"] == "stop"
    assert stopped["message"]["content"] == full["content"][: full["content"].index(stop)]


def test_streaming_sends_server_sent_events_that_add_up_to_the_answer(model_stack, language_models):
    url = model_stack.service.url
    whole = chat(url, model=SUPPORT_WRITER, max_tokens=30).json()["choices"][0]["message"]
    request = {
        "model": SUPPORT_WRITER,
        "max_tokens": 30,
        "stream": True,
        "messages": [{"role": "user", "content": "production is down"}],
    }
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=request, timeout=30) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert len(chunks) > 1 and all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert "".join(c["choices"][0]["delta"]["content"] for c in chunks) == whole["content"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["usage"]["completion_tokens"] == 30


@pytest.mark.parametrize(
    ("model", "trained"),
    [(SUPPORT_WRITER, "language_models"), (SUPPORT_WRITER_GPT, "transformers_language_model")],
)
def test_guided_decoding_answers_one_of_the_choices_or_json_matching_the_schema(
    request, model_stack, model, trained
):
    """The toy and the GPT-2-style model (transformers flavor) decode the same way."""
    request.getfixturevalue(trained)
    url = model_stack.service.url
    choices = ["urgent", "normal", "low"]
    picked = chat(url, model=model, guided_choice=choices).json()
    assert picked["choices"][0]["message"]["content"] in choices
    schema = {
        "type": "object",
        "properties": {
            "urgency": {"type": "string", "enum": choices},
            "summary": {"type": "string", "maxLength": 40},
            "count": {"type": "integer"},
            "known": {"type": "boolean"},
        },
        "required": ["urgency", "summary", "count", "known"],
    }
    answer = chat(
        url,
        model=model,
        max_tokens=120,
        response_format={"type": "json_schema", "json_schema": {"name": "t", "schema": schema}},
    )
    assert answer.status_code == 200, answer.text
    jsonschema.validate(json.loads(answer.json()["choices"][0]["message"]["content"]), schema)


def test_the_plain_completions_endpoint_continues_a_prompt(model_stack, language_models):
    answer = httpx.post(
        f"{model_stack.service.url}/v1/completions",
        json={"model": SUPPORT_WRITER, "prompt": "user: hello\nassistant: ", "max_tokens": 8},
        timeout=30,
    ).json()
    assert answer["object"] == "text_completion" and len(answer["choices"][0]["text"]) == 8


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"model": "no-such-model"}, 404, "not found"),
        ({"model": f"{SUPPORT_WRITER}@nightly"}, 404, "alias nightly not found"),
        ({"model": "claim-fraud"}, 400, "not a language model"),
        ({"model": SUPPORT_WRITER, "max_tokens": 0}, 400, "max_tokens"),
        ({"model": SUPPORT_WRITER, "messages": []}, 400, "messages"),
        (
            {"model": SUPPORT_WRITER, "messages": [{"role": "user", "content": "x" * 5000}]},
            400,
            "context length is 2048",
        ),
        (
            {"model": SUPPORT_WRITER, "guided_json": {"type": "array"}},
            400,
            "object schema",
        ),
    ],
)
def test_bad_requests_get_an_openai_style_error_naming_the_problem(
    model_stack, trained_models, language_models, body, status, message
):
    answer = chat(model_stack.service.url, **body)
    assert answer.status_code == status
    assert message in answer.json()["error"]["message"]


def test_a_language_model_on_the_predict_endpoint_is_a_clear_400(model_stack, language_models):
    answer = httpx.post(
        f"{model_stack.service.url}/predict_rows",
        json={"rows": [{"model": SUPPORT_WRITER, "inputs": {"text": "hello"}}]},
        timeout=30,
    ).json()
    assert answer[0]["status"] == 400 and "language model" in answer[0]["error"]
