"""The ``llm_openai`` connection type: an OpenAI-compatible provider (vLLM, Ollama, a
hosted API) as a base URL, a default model and an API key (encrypted like every secret).

The ``ai.*`` blocks call it through ``apps/mlmodels/providers.py`` with the SSRF-guarded
client; the key goes only to the base URL (``credential_scope``)."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import Field, field_validator

from apps.core.http import SSRFError, target_check

from ..http.connection import probe
from ..types import ConnectionConfig, ConnectionType, SecretField, TestOutcome


class LlmConfig(ConnectionConfig):
    base_url: str = Field(
        description="The API root, e.g. https://api.example.com/v1 (chat/completions is "
        "called under it; Test connection GETs its models list).",
        pattern=r"^https?://\S+$",
    )
    default_model: str = Field(
        default="", max_length=200, description="The model a step uses unless it names one."
    )

    @field_validator("base_url")
    @classmethod
    def readable_url(cls, value: str) -> str:
        try:
            target_check(value)
        except SSRFError as error:
            raise ValueError(str(error)) from None
        return value.rstrip("/")


def bearer(secrets: Mapping[str, str]) -> dict[str, str]:
    key = secrets.get("api_key", "")
    return {"Authorization": f"Bearer {key}"} if key else {}


class LlmConnection(ConnectionType):
    key = "llm_openai"
    title = "LLM provider (OpenAI-compatible)"
    description = "A language model API that speaks OpenAI's chat completions."
    Config = LlmConfig
    secret_fields = (SecretField("api_key", "API key", "Sent as a bearer token."),)

    @classmethod
    def test(cls, config: LlmConfig, secrets: Mapping[str, str]) -> TestOutcome:
        url = f"{config.base_url}/models"
        response = probe(
            url, headers=bearer(secrets), base_url=config.base_url, follow_redirects=False
        )
        if isinstance(response, TestOutcome):
            return response
        if response.status_code in (401, 403):
            return TestOutcome(
                False, "auth", f"the provider refused the key ({response.status_code})"
            )
        if response.status_code != 200:
            return TestOutcome(False, "error", f"{url} answered {response.status_code}")
        return TestOutcome(True, "ok", f"connected: {url} answered 200")
