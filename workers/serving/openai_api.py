"""The model service's OpenAI-compatible API, mounted at ``/v1`` beside ``/predict``.

``POST /v1/chat/completions`` and ``POST /v1/completions`` serve the language models
registered in MLflow (pyfunc or transformers-flavor models whose metadata says
``flowgate_kind: language``; both decode through ``apps/mlmodels/decoding.py``).
``model`` names the registered model: ``support-writer`` (its ``production`` alias),
``support-writer@canary`` or ``support-writer/2`` (an exact version); a ``route_key``
field routes ``production`` calls to the canary as ``/predict`` does. ``stream: true``
answers with server-sent events (``chat.completion.chunk`` objects, then ``[DONE]``).

Guided decoding (vLLM's extensions, and OpenAI's ``response_format``): ``guided_choice``
(a list of strings: the answer is one of them, picked by the model's likelihood) and
``guided_json`` / ``response_format: {"type": "json_schema", "json_schema": {"schema"}}``
(the answer is JSON built to the schema). Each answer carries ``usage`` token counts and a
``flowgate`` object naming the version, alias and device that answered.

Tools (OpenAI's ``tools``, ``tool_choice`` and ``parallel_tool_calls``): the model either
answers or asks for function calls (``message.tool_calls``, ``finish_reason:
"tool_calls"``). The toy model cannot plan, so the service decides by guided choice: among
the tools not called yet in this conversation and ``final_answer`` (``tool_choice:
"required"`` leaves out the final answer for the first pick, ``"none"`` leaves out the
tools, a named function forces it); a tool's arguments are then guided JSON from its
``parameters`` schema (the fields of a type guided decoding fills: string, enum, integer,
number, boolean; others are left to their defaults). One call per answer, unless the
request says ``parallel_tool_calls: true``: then the choice is made again among the tools
not picked yet until it is the final answer (or none is left), and the answer carries
every call picked, in order.

Errors use OpenAI's shape, ``{"error": {"message", "type", "code"}}``: 400 bad request or a
prompt over the context length, 404 unknown model or alias, 503 registry down.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

from bentoml.exceptions import InvalidArgument, NotFound, ServiceUnavailable
from starlette.applications import Starlette
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

MODEL_PATTERN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.\-]*)(?:@(?P<alias>[A-Za-z0-9_\-]+)|/(?P<version>[0-9]+))?$"
)
MAX_TOKENS_LIMIT = 4096
TOOL_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
FINAL_ANSWER = "final_answer"
MAX_TOOLS = 64
_service: Any = None


def bind(service: Any) -> None:
    """Called by ModelService.__init__: the routes below answer with that instance."""
    global _service
    _service = service


class BadRequest(Exception):
    status = 400


def _error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status)


def _number(body: dict[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise BadRequest(f"{name} must be a number from {low:g} to {high:g}")
    return float(value)


def _stops(body: dict[str, Any]) -> list[str]:
    stop = body.get("stop") or []
    stop = [stop] if isinstance(stop, str) else stop
    if not isinstance(stop, list) or len(stop) > 4 or not all(isinstance(s, str) for s in stop):
        raise BadRequest("stop must be a string or a list of at most 4 strings")
    return stop


def _guided(body: dict[str, Any]) -> tuple[str, Any]:
    choice = body.get("guided_choice")
    if choice is not None:
        if (
            not isinstance(choice, list)
            or not choice
            or not all(isinstance(c, str) for c in choice)
        ):
            raise BadRequest("guided_choice must be a non-empty list of strings")
        return "choice", choice
    schema = body.get("guided_json")
    response_format = body.get("response_format") or {}
    if schema is None and response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
    if schema is not None:
        if not isinstance(schema, dict):
            raise BadRequest("the JSON schema must be an object")
        return "json", schema
    return "", None


def _tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    """``tools`` as [{"name", "description", "parameters"}]."""
    tools = body.get("tools")
    if tools is None:
        return []
    if not isinstance(tools, list) or len(tools) > MAX_TOOLS:
        raise BadRequest(f"tools must be a list of at most {MAX_TOOLS} functions")
    parsed = []
    for tool in tools:
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or tool.get("type", "function") != "function":
            raise BadRequest('each tool must be {"type": "function", "function": {...}}')
        name = function.get("name")
        if not isinstance(name, str) or not TOOL_NAME.match(name):
            raise BadRequest("a tool's name must be 1-64 letters, digits, _ or -")
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        if not isinstance(parameters, dict):
            raise BadRequest(f"tool {name}: parameters must be a JSON Schema object")
        description = str(function.get("description") or "")
        parsed.append({"name": name, "description": description, "parameters": parameters})
    if len({tool["name"] for tool in parsed}) != len(parsed):
        raise BadRequest("tool names must be unique")
    return parsed


def _tool_choice(body: dict[str, Any], tools: list[dict[str, Any]]) -> str:
    """``auto``, ``required``, ``none``, or the name of the function it forces."""
    choice = body.get("tool_choice")
    if choice is None:
        return "auto" if tools else "none"
    if choice in ("auto", "required", "none"):
        return str(choice)
    name = ((choice or {}).get("function") or {}).get("name") if isinstance(choice, dict) else None
    if not any(tool["name"] == name for tool in tools):
        raise BadRequest("tool_choice must be auto, required, none or one of the tools")
    return str(name)


def _parallel(body: dict[str, Any]) -> bool:
    """``parallel_tool_calls``: true asks for every call the model wants this turn."""
    value = body.get("parallel_tool_calls")
    if value is not None and not isinstance(value, bool):
        raise BadRequest("parallel_tool_calls must be true or false")
    return bool(value)


def _called(body: dict[str, Any]) -> set[str]:
    """Names of the functions the conversation called already."""
    return {
        str((call.get("function") or {}).get("name"))
        for message in body.get("messages") or ()
        if isinstance(message, dict)
        for call in message.get("tool_calls") or ()
        if isinstance(call, dict)
    }


def _fillable(schema: dict[str, Any]) -> dict[str, Any]:
    """The part of a tool's parameters that guided decoding fills."""
    found = schema.get("properties")
    properties: dict[str, Any] = found if isinstance(found, dict) else {}
    return {
        "type": "object",
        "properties": {
            name: spec
            for name, spec in properties.items()
            if isinstance(spec, dict)
            and ("enum" in spec or spec.get("type") in ("string", "integer", "number", "boolean"))
        },
    }


class Completion:
    """One parsed request, decoded by the toy (or any ``stream``/``choose``/``guided_json``)
    language model the registry resolved."""

    def __init__(self, body: dict[str, Any], prompt: str) -> None:
        match = MODEL_PATTERN.match(str(body.get("model") or ""))
        if not match:
            raise BadRequest("model must be a registered name, name@alias or name/version")
        self.name = match["name"]
        self.alias, self.version = match["alias"] or "", match["version"] or ""
        self.route_key = str(body.get("route_key") or body.get("user") or "")
        self.prompt = prompt
        self.max_tokens = int(_number(body, "max_tokens", 256, 1, MAX_TOKENS_LIMIT))
        self.temperature = _number(body, "temperature", 0.0, 0.0, 2.0)
        self.seed = int(_number(body, "seed", 0, 0, 2**31))
        self.stop = _stops(body)
        self.guided = _guided(body)
        self.tools = _tools(body)
        self.tool_choice = _tool_choice(body, self.tools)
        if self.guided[0] and self.tool_choice != "none":
            raise BadRequest("guided decoding and tools cannot be combined")
        self.called = _called(body)
        self.parallel = _parallel(body)
        self.tool_calls: list[dict[str, Any]] = []
        self.started = time.monotonic()
        self.lm, self.served = _service.language_model(
            self.name, self.version, self.alias, self.route_key
        )
        self.lm.check_prompt(prompt)

    def run(self) -> tuple[str, str]:
        with self.lm.decoding():
            return self._run()

    def _run(self) -> tuple[str, str]:
        if self.tool_choice != "none":
            self.tool_calls = self._tool_calls()
            if self.tool_calls:
                return "", "tool_calls"
        mode, argument = self.guided
        if mode == "choice":
            return self.lm.choose(self.prompt, argument)[0], "stop"
        if mode == "json":
            return self.lm.guided_json(self.prompt, argument, max_tokens=self.max_tokens), "stop"
        pieces = list(self._pieces())
        return "".join(text for text, _ in pieces), pieces[-1][1] or "stop"

    def _tool_calls(self) -> list[dict[str, Any]]:
        """The functions the model calls this turn, in order (none: it answers)."""
        by_name = {tool["name"]: tool for tool in self.tools}
        if self.tool_choice in by_name:
            return [self._call(by_name[self.tool_choice])]
        calls: list[dict[str, Any]] = []
        picked = set(self.called)
        while not calls or self.parallel:
            options = [name for name in by_name if name not in picked]
            if self.tool_choice == "required" and not calls:
                options = options or list(by_name)
            else:
                options.append(FINAL_ANSWER)
            name = options[0] if len(options) == 1 else self.lm.choose(self.prompt, options)[0]
            if name == FINAL_ANSWER:
                break
            calls.append(self._call(by_name[name]))
            picked.add(name)
        return calls

    def _call(self, tool: dict[str, Any]) -> dict[str, Any]:
        """One call of ``tool``, its arguments guided JSON from its parameters."""
        arguments = self.lm.guided_json(
            f"{self.prompt}call {tool['name']} ",
            _fillable(tool["parameters"]),
            max_tokens=self.max_tokens,
        )
        return {
            "id": f"call_{uuid.uuid4().hex[:24]}",
            "type": "function",
            "function": {"name": tool["name"], "arguments": arguments},
        }

    def pieces(self) -> Iterator[tuple[str, str | None]]:
        """The streamed decode, counted as under way until it ends (or the client leaves
        and the generator is closed) so that concurrent decodes batch with it."""
        with self.lm.decoding():
            yield from self._pieces()

    def _pieces(self) -> Iterator[tuple[str, str | None]]:
        return self.lm.stream(
            self.prompt,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            stop=self.stop,
            seed=self.seed,
        )

    def envelope(self, kind: str, completion_text: str = "") -> dict[str, Any]:
        prompt_tokens = self.lm.count_tokens(self.prompt)
        completion_tokens = self.lm.count_tokens(completion_text) + sum(
            self.lm.count_tokens(call["function"]["name"] + call["function"]["arguments"])
            for call in self.tool_calls
        )
        return {
            "id": f"cmpl-{uuid.uuid4().hex[:24]}",
            "object": kind,
            "created": int(time.time()),
            "model": self.name,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            "flowgate": {
                "model": self.name,
                "version": self.served[0],
                "alias": self.served[1],
                "device": _service.device,
                "context_length": self.lm.context_length,
                "latency_ms": round((time.monotonic() - self.started) * 1000, 3),
            },
        }


async def _parse(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise BadRequest("the body must be JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _messages_prompt(body: dict[str, Any]) -> str:
    from apps.mlmodels.toy_lm import chat_prompt

    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list")
    for message in messages:
        if not isinstance(message, dict):
            raise BadRequest("each message must be an object")
        calls = message.get("tool_calls")
        if calls is not None and not (
            isinstance(calls, list)
            and all(
                isinstance(call, dict)
                and isinstance(call.get("function"), dict)
                and isinstance(call["function"].get("name"), str)
                for call in calls
            )
        ):
            raise BadRequest("tool_calls must be a list of function calls")
        content = message.get("content")
        if not isinstance(content, str) and not (content is None and calls):
            raise BadRequest("each message needs a role and a text content")
    return chat_prompt(messages, _tools(body))


async def _handle(request: Request, chat: bool) -> Response:
    try:
        body = await _parse(request)
        if chat:
            prompt = _messages_prompt(body)
        elif body.get("tools"):
            raise BadRequest("tools need /v1/chat/completions")
        elif isinstance(body.get("prompt"), str):
            prompt = body["prompt"]
        else:
            raise BadRequest("prompt must be a string")
        completion = await run_in_threadpool(Completion, body, prompt)
        if body.get("stream"):
            if completion.guided[0] or completion.tools:
                raise BadRequest("guided decoding and tools are not available with stream")
            return StreamingResponse(_events(completion, chat), media_type="text/event-stream")
        text, finish = await run_in_threadpool(completion.run)
    except BadRequest as error:
        return _error(400, str(error), "invalid_request_error")
    except ValueError as error:  # PromptTooLong, GuidedUnsupported
        return _error(400, str(error), "invalid_request_error")
    except InvalidArgument as error:
        return _error(400, str(error), "invalid_request_error")
    except NotFound as error:
        return _error(404, str(error), "not_found_error")
    except ServiceUnavailable as error:
        return _error(503, str(error), "service_unavailable")
    answer = completion.envelope("chat.completion" if chat else "text_completion", text)
    choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
    if chat:
        choice["message"] = {"role": "assistant", "content": text}
        if completion.tool_calls:
            choice["message"] = {
                "role": "assistant",
                "content": None,
                "tool_calls": completion.tool_calls,
            }
    else:
        choice["text"] = text
    return JSONResponse({**answer, "choices": [choice]})


async def _events(completion: Completion, chat: bool) -> Any:
    """Server-sent events: one chunk per piece of text, a last chunk with the finish
    reason and usage, then ``[DONE]``."""
    kind = "chat.completion.chunk" if chat else "text_completion"
    produced = ""
    async for text, finish in iterate_in_threadpool(completion.pieces()):
        produced += text
        chunk = completion.envelope(kind, produced)
        delta = {"content": text} if chat else None
        choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
        choice.update({"delta": delta} if chat else {"text": text})
        if finish is None:
            chunk.pop("usage")
        yield f"data: {json.dumps({**chunk, 'choices': [choice]})}\n\n"
    yield "data: [DONE]\n\n"


async def chat_completions(request: Request) -> Response:
    return await _handle(request, chat=True)


async def completions(request: Request) -> Response:
    return await _handle(request, chat=False)


async def models(request: Request) -> Response:
    names = await run_in_threadpool(_service.language_model_names)
    return JSONResponse(
        {"object": "list", "data": [{"id": name, "object": "model"} for name in names]}
    )


app = Starlette(
    routes=[
        Route("/chat/completions", chat_completions, methods=["POST"]),
        Route("/completions", completions, methods=["POST"]),
        Route("/models", models, methods=["GET"]),
    ]
)
