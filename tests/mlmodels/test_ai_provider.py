"""ai.* blocks with an ``llm_openai`` connection: an outside OpenAI-compatible provider
(a loopback stand-in), reached through the SSRF-guarded client with the encrypted key."""

from __future__ import annotations

import pytest

from apps.audit.redaction import WorkspaceRedaction
from apps.blocks.base import BlockError
from apps.connectors.models import Connection
from apps.connectors.services import WorkspaceConnections, connection_create, connection_test
from apps.mlmodels.ai_blocks import (
    AIExtractBlock,
    AIGenerateBlock,
    ExtractConfig,
    GenerateConfig,
)
from apps.mlmodels.openai_wire import ChatRequest, LLMCallError
from apps.mlmodels.providers import provider_chat
from apps.policies.services import WorkspacePolicies, policy_publish
from tests.blocks.fakes import FakeContext
from tests.support.openai_provider import OpenAIProvider
from tests.support.processes import free_port

pytestmark = pytest.mark.django_db

SCHEMA = {
    "type": "object",
    "properties": {"urgency": {"type": "string", "enum": ["urgent", "low"]}},
    "required": ["urgency"],
}


@pytest.fixture
def loopback_allowed(settings):
    settings.FLOWGATE = {**settings.FLOWGATE, "SSRF_ALLOWLIST": ["127.0.0.1"]}


@pytest.fixture
def provider(loopback_allowed):
    servers = []

    def start(answers, key="sk-test", delay=0.0):
        server = OpenAIProvider(answers, key=key, delay=delay)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def connect(workspace, admin_user, url, key="sk-test", name="outside"):
    return connection_create(
        workspace=workspace,
        actor=admin_user,
        name=name,
        type="llm_openai",
        config={"base_url": url, "default_model": "outside-model"},
        secrets={"api_key": key},
    )


def context(workspace, **scope):
    return FakeContext(
        scope={"trigger": {"body": scope}},
        workspace_id=str(workspace.id),
        services={
            "connections": WorkspaceConnections(workspace.id),
            "redaction": WorkspaceRedaction(workspace.id),
            "policies": WorkspacePolicies(workspace.id),
        },
    )


def test_the_key_is_stored_encrypted_and_the_connection_test_reaches_the_provider(
    workspace, admin_user, provider
):
    server = provider(["hi"])
    connection = connect(workspace, admin_user, server.url, key="sk-test")
    stored = Connection.objects.get(id=connection.id).secrets_encrypted
    assert stored and "sk-test" not in stored
    assert connection_test(connection=connection).ok
    wrong = connect(workspace, admin_user, server.url, key="sk-wrong", name="wrong")
    outcome = connection_test(connection=wrong)
    assert (outcome.ok, outcome.stage) == (False, "auth")


def test_an_invalid_json_answer_is_retried_with_the_error_then_accepted(
    workspace, admin_user, provider
):
    server = provider(["sure! urgent", '{"urgency": "soon"}', '{"urgency": "urgent"}'])
    connect(workspace, admin_user, server.url)
    config = GenerateConfig(
        prompt="How urgent is: {{ trigger.body.issue }}", connection="outside", json_schema=SCHEMA
    )
    result = AIGenerateBlock().execute(context(workspace, issue="site down"), config, None)
    assert result.port == "out" and result.output["json"] == {"urgency": "urgent"}
    assert result.meta["attempts"] == 3
    assert result.meta["provider"] == "connection:outside"
    assert result.meta["model"] == "outside-model"
    assert result.meta["usage"] == {"prompt": 33, "completion": 21, "total": 54}
    first, second, third = (r["body"] for r in server.requests)
    assert first["messages"][-1]["content"] == "How urgent is: site down"
    assert first["response_format"]["json_schema"]["schema"] == SCHEMA
    assert "not JSON" in second["messages"][-1]["content"]
    assert "'soon' is not one of" in third["messages"][-1]["content"]
    assert all(r["headers"]["Authorization"] == "Bearer sk-test" for r in server.requests)


def test_answers_still_invalid_after_the_retries_take_the_invalid_port(
    workspace, admin_user, provider
):
    server = provider(["no json here"])
    connect(workspace, admin_user, server.url)
    config = ExtractConfig(
        text="{{ trigger.body.issue }}",
        fields={"urgency": {"type": "string"}},
        connection="outside",
        retries=1,
    )
    result = AIExtractBlock().execute(context(workspace, issue="x"), config, None)
    assert result.port == "invalid"
    assert result.output["text"] == "no json here" and "not JSON" in result.output["errors"][0]
    assert len(server.requests) == 2


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (429, True), (400, False)])
def test_provider_errors_are_step_errors_retried_only_when_worth_it(
    workspace, admin_user, provider, status, retryable
):
    server = provider([status])
    connect(workspace, admin_user, server.url)
    config = GenerateConfig(prompt="hello", connection="outside")
    with pytest.raises(BlockError) as caught:
        AIGenerateBlock().execute(context(workspace), config, None)
    assert caught.value.retryable is retryable
    assert f"answered {status}" in caught.value.message


def test_a_provider_that_is_down_is_a_retryable_error_at_once(workspace, admin_user, provider):
    connect(workspace, admin_user, f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(BlockError) as caught:
        AIGenerateBlock().execute(
            context(workspace), GenerateConfig(prompt="hello", connection="outside"), None
        )
    assert caught.value.retryable and "unavailable" in caught.value.message


def test_the_ssrf_guard_refuses_a_provider_at_a_metadata_address(workspace, admin_user):
    from apps.connectors.llm.connection import LlmConfig
    from apps.connectors.types import ConnectionHandle

    handle = ConnectionHandle(
        name="meta",
        type="llm_openai",
        config=LlmConfig(base_url="http://169.254.169.254/v1", default_model="m"),
        secrets={"api_key": "sk"},
    )
    with pytest.raises(LLMCallError) as caught:
        provider_chat(handle, ChatRequest(messages=[{"role": "user", "content": "x"}]))
    assert not caught.value.retryable and "refused" in caught.value.message


def test_a_step_names_a_missing_or_wrong_type_connection(workspace, admin_user):
    with pytest.raises(BlockError, match="no connection named 'nope'"):
        AIGenerateBlock().execute(
            context(workspace), GenerateConfig(prompt="x", connection="nope"), None
        )


def test_the_config_needs_exactly_one_model_source_and_a_valid_schema():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="either a registered model or an LLM connection"):
        GenerateConfig(prompt="x")
    with pytest.raises(ValidationError, match="either a registered model or an LLM connection"):
        GenerateConfig(prompt="x", model="m", connection="c")
    with pytest.raises(ValidationError, match="not a valid JSON Schema"):
        GenerateConfig(prompt="x", model="m", json_schema={"type": "nonsense"})
    assert AIGenerateBlock.output_ports(GenerateConfig(prompt="x", model="m")) == ("out",)


def test_the_ai_provider_policy_decides_whether_run_data_may_leave(workspace, admin_user, provider):
    from apps.policies.models import Policy

    server = provider(["hello"])
    connect(workspace, admin_user, server.url)
    config = GenerateConfig(prompt="{{ trigger.body.issue }}", connection="outside")
    allowed = AIGenerateBlock().execute(context(workspace, issue="x"), config, None)
    gate = allowed.meta["provider_policy"]
    assert gate["policy"] == "ai_provider" and gate["version"]
    assert gate["reasons"] == ["this workspace may use outside providers"]

    # The workspace keeps prompts in house: the step fails before anything is sent.
    policy = Policy.objects.get(workspace=workspace, slug="ai_provider")
    source = policy.draft_source.replace("outside_allowed := true", "outside_allowed := false")
    policy_publish(policy=policy, actor=admin_user, source=source, run_tests=False)
    with pytest.raises(BlockError) as caught:
        AIGenerateBlock().execute(context(workspace, issue="x"), config, None)
    assert not caught.value.retryable
    assert "keeps prompts in house: 127.0.0.1 is an outside provider" in caught.value.message
    assert len(server.requests) == 1


def test_a_slow_provider_fails_the_step_within_its_timeout_retries_included(
    workspace, admin_user, provider
):
    import time

    server = provider(["not json"], delay=0.8)
    connect(workspace, admin_user, server.url)
    slow = GenerateConfig(prompt="x", connection="outside", timeout_seconds=0.3)
    started = time.monotonic()
    with pytest.raises(BlockError) as caught:
        AIGenerateBlock().execute(context(workspace), slow, None)
    assert caught.value.retryable and "did not answer within 0.3s" in caught.value.message
    # Invalid answers are retried only while the step's time lasts.
    bounded = GenerateConfig(
        prompt="x", connection="outside", json_schema=SCHEMA, retries=5, timeout_seconds=1.5
    )
    result = AIGenerateBlock().execute(context(workspace), bounded, None)
    assert result.port == "invalid" and result.meta["attempts"] < 6
    assert result.output["errors"][-1] == "no time left to retry within timeout_seconds"
    assert time.monotonic() - started < 10


def test_web_and_worker_processes_load_no_model_code_for_ai_blocks():
    """The blocks speak HTTP; model code (the toy model, numpy, MLflow, torch) stays in the
    model service's process. Checked in a fresh interpreter with every app loaded."""
    import subprocess
    import sys

    from tests.support.processes import REPOSITORY_ROOT

    heavy = ("apps.mlmodels.toy_lm", "mlflow", "numpy", "torch", "transformers")
    probe = (
        "import sys, django; django.setup(); "
        "from apps.blocks.registry import registry; registry.get('ai.generate'); "
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPOSITORY_ROOT, capture_output=True, text=True
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[]"


def test_an_admin_creates_an_llm_connection_from_the_form_and_the_key_is_never_shown(
    admin_client, workspace
):
    from django.urls import reverse

    from apps.connectors.crypto import decrypt_secrets

    create = reverse(
        "connections:create", kwargs={"workspace_slug": "acme", "type_key": "llm_openai"}
    )
    assert b"LLM provider (OpenAI-compatible)" in admin_client.get(create).content
    response = admin_client.post(
        create,
        {
            "name": "hosted",
            "config_base_url": "https://llm.example.com/v1/",
            "config_default_model": "big-model",
            "secret_api_key": "sk-very-secret",
        },
    )
    assert response.status_code == 302
    connection = Connection.objects.get(workspace=workspace, name="hosted")
    assert connection.config == {
        "base_url": "https://llm.example.com/v1",
        "default_model": "big-model",
    }
    assert decrypt_secrets(connection.secrets_encrypted) == {"api_key": "sk-very-secret"}
    assert b"sk-very-secret" not in admin_client.get(response["Location"]).content
    bad = admin_client.post(create, {"name": "bad", "config_base_url": "ftp://x"})
    assert bad.status_code == 400


def test_the_recorded_prompt_masks_classified_fields_however_they_are_written(
    workspace, admin_user, provider
):
    from apps.audit.redaction import MASK
    from apps.audit.services import data_settings_save

    data_settings_save(
        workspace=workspace, actor=admin_user, sensitive_fields=["email"], retention_days=30
    )
    server = provider(["ok"])
    connect(workspace, admin_user, server.url)
    config = GenerateConfig(
        prompt='A: {{ trigger.body.email + "!" }} B: {{ trigger.body }} C: {{ trigger.body.api_key }}',
        connection="outside",
    )
    ticket = {"email": "ann@example.com", "api_key": "k-1", "issue": "down"}
    result = AIGenerateBlock().execute(context(workspace, **ticket), config, None)
    recorded = result.meta["prompt"]
    assert "ann@example.com" not in recorded and "k-1" not in recorded
    assert recorded.startswith(f"A: {MASK} B: ") and recorded.endswith(f"C: {MASK}")
    assert '"issue": "down"' in recorded
    # The model itself got the real values.
    sent = server.requests[0]["body"]["messages"][-1]["content"]
    assert "ann@example.com!" in sent and '"api_key": "k-1"' in sent
