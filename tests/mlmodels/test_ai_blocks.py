"""ai.generate / ai.classify / ai.extract against the real model service serving the toy
language model from the real MLflow registry, in block calls and in a flow run on a worker."""

from __future__ import annotations

import jsonschema
import pytest

from apps.audit.redaction import MASK, WorkspaceRedaction
from apps.audit.services import data_settings_save
from apps.blocks.base import BlockError
from apps.mlmodels.ai_blocks import (
    AIClassifyBlock,
    AIExtractBlock,
    AIGenerateBlock,
    ClassifyConfig,
    ExtractConfig,
    GenerateConfig,
)
from apps.mlmodels.blocks import ModelServiceClient
from apps.mlmodels.training import SUPPORT_WRITER
from tests.blocks.fakes import FakeContext
from tests.support.processes import free_port

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

TICKET = {"email": "ann@example.com", "issue": "production is down"}


@pytest.fixture
def classified(workspace, admin_user):
    data_settings_save(
        workspace=workspace, actor=admin_user, sensitive_fields=["email"], retention_days=30
    )
    return workspace


def context(workspace, url):
    return FakeContext(
        scope={"trigger": {"body": TICKET}},
        workspace_id=str(workspace.id),
        services={
            "models": ModelServiceClient(str(workspace.id), base_url=url),
            "redaction": WorkspaceRedaction(workspace.id),
        },
    )


def test_generate_answers_from_the_registry_and_records_a_redacted_prompt_and_usage(
    classified, settings, model_stack, language_models
):
    settings.FLOWGATE = {**settings.FLOWGATE, "LLM_TOKEN_COSTS": {SUPPORT_WRITER: 0.5}}
    config = GenerateConfig(
        model=SUPPORT_WRITER,
        system="You answer support tickets.",
        prompt="Ticket from {{ trigger.body.email }}: {{ trigger.body.issue }}",
        max_tokens=40,
    )
    result = AIGenerateBlock().execute(context(classified, model_stack.service.url), config, None)
    assert result.port == "out" and 0 < len(result.output["text"]) <= 40
    meta = result.meta
    assert (meta["model"], meta["model_version"], meta["model_alias"]) == (
        SUPPORT_WRITER,
        "1",
        "production",
    )
    assert meta["provider"] == "flowgate-models"
    assert meta["prompt"] == f"Ticket from {MASK}: production is down"
    assert meta["system"] == "You answer support tickets."
    assert meta["usage"]["completion"] == len(result.output["text"])
    # The model's tokens are characters: the chat layout plus the filled-in prompt.
    assert meta["usage"]["prompt"] > len("Ticket from ann@example.com: production is down")
    assert meta["cost"] == pytest.approx(meta["usage"]["total"] * 0.5 / 1000)
    assert meta["latency_ms"] > 0 and meta["attempts"] == 1


def test_generate_with_a_schema_gets_json_by_guided_decoding(
    classified, model_stack, language_models
):
    schema = {
        "type": "object",
        "properties": {
            "urgency": {"type": "string", "enum": ["urgent", "normal", "low"]},
            "summary": {"type": "string"},
        },
        "required": ["urgency", "summary"],
    }
    config = GenerateConfig(
        model=SUPPORT_WRITER, version="2", prompt="{{ trigger.body.issue }}", json_schema=schema
    )
    result = AIGenerateBlock().execute(context(classified, model_stack.service.url), config, None)
    assert result.port == "out" and result.meta["attempts"] == 1
    jsonschema.validate(result.output["json"], schema)
    assert result.meta["model_version"] == "2"


def test_classify_and_extract_are_the_same_call_in_business_terms(
    classified, model_stack, language_models
):
    url = model_stack.service.url
    labels = ["urgent", "normal", "low"]
    classified_as = AIClassifyBlock().execute(
        context(classified, url),
        ClassifyConfig(model=SUPPORT_WRITER, text="{{ trigger.body.issue }}", labels=labels),
        None,
    )
    assert classified_as.output["label"] in labels
    extracted = AIExtractBlock().execute(
        context(classified, url),
        ExtractConfig(
            model=SUPPORT_WRITER,
            text="{{ trigger.body.issue }}",
            fields={"summary": {"type": "string"}, "outage": {"type": "boolean"}},
        ),
        None,
    )
    assert set(extracted.output["fields"]) == {"summary", "outage"}
    assert isinstance(extracted.output["fields"]["outage"], bool)


def test_an_answer_the_schema_still_rejects_after_retries_takes_the_invalid_port(
    classified, model_stack, language_models
):
    # The toy model writes short strings; this schema wants a long one.
    schema = {
        "type": "object",
        "properties": {"summary": {"type": "string", "minLength": 400}},
        "required": ["summary"],
    }
    config = GenerateConfig(
        model=SUPPORT_WRITER, prompt="{{ trigger.body.issue }}", json_schema=schema, retries=2
    )
    result = AIGenerateBlock().execute(context(classified, model_stack.service.url), config, None)
    assert result.port == "invalid" and result.meta["attempts"] == 3
    assert "is too short" in result.output["errors"][0]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"model": "no-such-model"}, "not found"),
        ({"model": SUPPORT_WRITER, "alias": "nightly"}, "alias nightly not found"),
        ({"model": "claim-fraud"}, "not a language model"),
        (
            {"model": SUPPORT_WRITER, "prompt": "{{ trigger.body.issue }}" + "x" * 3000},
            "context length is 2048",
        ),
    ],
)
def test_bad_models_and_prompts_fail_the_step_with_a_message_and_no_retry(
    classified, model_stack, trained_models, language_models, config, message
):
    config = GenerateConfig(**{"prompt": "{{ trigger.body.issue }}", **config})
    with pytest.raises(BlockError) as caught:
        AIGenerateBlock().execute(context(classified, model_stack.service.url), config, None)
    assert message in caught.value.message and not caught.value.retryable


def test_a_model_service_that_is_down_is_a_retryable_step_error(classified):
    config = GenerateConfig(model=SUPPORT_WRITER, prompt="hello")
    with pytest.raises(BlockError) as caught:
        AIGenerateBlock().execute(
            context(classified, f"http://127.0.0.1:{free_port()}"), config, None
        )
    assert caught.value.retryable and "unavailable" in caught.value.message
