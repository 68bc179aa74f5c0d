"""The client for outside language-model providers (an ``llm_openai`` connection): chat
completions through the SSRF-guarded client, the API key kept to the connection's base URL,
the workspace's egress allow-list applied by the caller (``egress_allowed``)."""

from __future__ import annotations

from typing import Any

from apps.core.http import SSRFError, credential_scope, safe_client

from .openai_wire import ChatAnswer, ChatRequest, LLMCallError, post_chat


def provider_chat(connection: Any, request: ChatRequest, *, model: str = "") -> ChatAnswer:
    """``connection`` is a ConnectionHandle of type ``llm_openai``."""
    from apps.connectors.llm.connection import bearer

    config = connection.config
    model = model or config.default_model
    if not model:
        raise LLMCallError(
            f"connection {connection.name!r} has no default model; name one in the step",
            retryable=False,
        )
    headers = bearer(connection.secrets)
    try:
        # No redirects: a provider has no reason to send the prompt (or the key) elsewhere.
        with safe_client(timeout=request.timeout, follow_redirects=False) as client:
            return post_chat(
                client,
                f"{config.base_url}/chat/completions",
                request.body(model),
                provider=f"provider {connection.name!r}",
                timeout=request.timeout,
                headers=headers,
                extensions=credential_scope(config.base_url, headers),
            )
    except SSRFError as error:
        raise LLMCallError(
            f"provider {connection.name!r} refused: {error}", retryable=False
        ) from None
