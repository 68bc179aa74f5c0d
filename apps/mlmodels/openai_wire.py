"""The OpenAI chat-completions wire format, shared by the two clients that speak it: the
model service's (``blocks.ModelServiceClient.chat``) and outside providers'
(``providers.py``). One request type, one answer type, one error, one parser."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx


class LLMCallError(Exception):
    """A chat call failed. ``retryable``: down, slow, 5xx, 429 or circuit open; otherwise
    the request was wrong (unknown model, prompt too long, bad key)."""

    def __init__(self, message: str, *, retryable: bool, status: int = 0) -> None:
        super().__init__(message)
        self.message, self.retryable, self.status = message, retryable, status


@dataclass(frozen=True)
class ChatRequest:
    messages: list[dict[str, Any]]
    max_tokens: int = 256
    temperature: float = 0.0
    stop: list[str] = field(default_factory=list)
    json_schema: dict[str, Any] | None = None
    timeout: float = 30.0
    route_key: str = ""
    # OpenAI's function tools ({"type": "function", "function": {name, description,
    # parameters}}) and tool_choice ("auto", "required", "none" or one function).
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = None
    # Whether the model may ask for several tools in one answer (None: the provider's
    # default; OpenAI's is yes, the model service's toy asks for one unless told yes).
    parallel_tool_calls: bool | None = None

    def body(self, model: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "messages": self.messages,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        if self.stop:
            body["stop"] = self.stop
        if self.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": self.json_schema},
            }
        if self.tools:
            body["tools"] = self.tools
            if self.tool_choice is not None:
                body["tool_choice"] = self.tool_choice
            if self.parallel_tool_calls is not None:
                body["parallel_tool_calls"] = self.parallel_tool_calls
        return body


@dataclass(frozen=True)
class ChatAnswer:
    text: str
    finish_reason: str
    model: str
    provider: str
    prompt_tokens: int
    completion_tokens: int
    version: str = ""
    alias: str = ""
    device: str = ""
    # [{"id", "name", "arguments" (the JSON text the model wrote)}] when it asked for tools.
    tool_calls: tuple[dict[str, str], ...] = ()


def post_chat(
    client: httpx.Client,
    url: str,
    body: dict[str, Any],
    *,
    provider: str,
    timeout: float,
    headers: dict[str, str] | None = None,
    extensions: dict[str, Any] | None = None,
) -> ChatAnswer:
    """POST a chat completion and read the answer; every failure is an LLMCallError that
    names ``provider``."""
    try:
        response = client.post(
            url, json=body, headers=headers or {}, timeout=timeout, extensions=extensions or {}
        )
    except httpx.TimeoutException:
        raise LLMCallError(
            f"{provider} did not answer within {round(timeout, 1):g}s", retryable=True
        ) from None
    except httpx.TransportError as error:
        raise LLMCallError(
            f"{provider} is unavailable ({error.__class__.__name__})", retryable=True
        ) from None
    if response.status_code != 200:
        raise LLMCallError(
            f"{provider} answered {response.status_code}: {_error_text(response)}",
            retryable=response.status_code >= 500 or response.status_code == 429,
            status=response.status_code,
        )
    return _answer(response, provider, str(body.get("model", "")))


def _answer(response: httpx.Response, provider: str, model: str) -> ChatAnswer:
    try:
        data = response.json()
        choice = data["choices"][0]
        text = choice["message"]["content"] or ""
        tool_calls = tuple(
            {
                "id": str(call.get("id") or f"call_{index}"),
                "name": str(call["function"]["name"]),
                "arguments": str(call["function"].get("arguments") or "{}"),
            }
            for index, call in enumerate(choice["message"].get("tool_calls") or ())
        )
    except (ValueError, KeyError, IndexError, TypeError):
        raise LLMCallError(
            f"{provider} sent an answer that is not a chat completion", retryable=False
        ) from None
    usage = data.get("usage") or {}
    served = data.get("flowgate") or {}
    return ChatAnswer(
        text=str(text),
        finish_reason=str(choice.get("finish_reason") or ""),
        model=str(data.get("model") or model),
        provider=provider,
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        version=str(served.get("version", "")),
        alias=str(served.get("alias", "")),
        device=str(served.get("device", "")),
        tool_calls=tool_calls,
    )


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error)[:300]
    return str(error or body)[:300]
