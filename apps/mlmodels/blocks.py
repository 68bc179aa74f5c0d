"""The ``model.predict`` block and the ``models`` service it calls.

The block maps the run's data to the model's input fields with CEL, asks the model service
(BentoML, at ``FLOWGATE["MODEL_SERVICE_URL"]``) for a prediction from a registered model by
alias or exact version, and returns the label, its score, every class score and the exact
model name, alias and version that answered: the decision audit of the step records them.
Calls go to the service's adaptively batched ``/predict_rows``, so concurrent steps share a
model call; the run id is the routing key, so when ``production`` has a canary share a run is
served by one side of the split for all its calls.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from typing import Any

import httpx
from django.conf import settings
from pydantic import Field, model_validator

from apps.blocks.base import DEFAULT_PORT, Block, BlockConfig, BlockContext, BlockError, Result
from apps.blocks.expressions import Expression, ExpressionError

from .row_batch import batcher

LOW_CONFIDENCE = "low_confidence"
FALLBACK = "fallback"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"


_http_client: httpx.Client | None = None


def _http() -> httpx.Client:
    """One keep-alive client per process (made on first use, so after a worker forks):
    building an httpx client costs tens of milliseconds, more than a prediction."""
    global _http_client
    if _http_client is None:
        from apps.core.http import internal_client

        _http_client = internal_client()
    return _http_client


class ModelServiceError(Exception):
    """``retryable``: the service is down, slow or erring (5xx) or the circuit is open;
    otherwise the request itself was wrong (4xx: bad input, unknown model)."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        circuit_open: bool = False,
        version: str = "",
        alias: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.circuit_open = circuit_open
        # The version that refused the call, when the service named one.
        self.version, self.alias = version, alias


class ModelServiceClient:
    """What ``ctx.service("models")`` returns: the model service over HTTP, behind a circuit
    breaker shared by every worker (see ``breaker.py``)."""

    def __init__(
        self, workspace_id: str, *, base_url: str | None = None, breaker: Any = None
    ) -> None:
        from .breaker import CircuitBreaker

        self.workspace_id = workspace_id
        self.base_url = (base_url or settings.FLOWGATE["MODEL_SERVICE_URL"]).rstrip("/")
        self.breaker = breaker or CircuitBreaker(f"models:{self.base_url}")

    def predict(self, **kwargs: Any) -> dict[str, Any]:
        self._breaker_check()
        try:
            answer = self._predict(**kwargs)
        except ModelServiceError as error:
            # A version that crashed was named by a service that answered: the service is
            # up, so one failing version (a canary) opens no breaker for the others.
            self._breaker_record(error.retryable and not error.version)
            raise
        self.breaker.success()
        return answer

    def chat(self, *, model: str, alias: str, version: str, request: Any) -> Any:
        """A chat completion (``openai_wire.ChatRequest``) from a registered language model
        through the service's OpenAI-compatible ``/v1/chat/completions``, behind the same
        circuit breaker. Raises ``openai_wire.LLMCallError``."""
        from .openai_wire import LLMCallError, post_chat

        try:
            self._breaker_check()
        except ModelServiceError as error:
            raise LLMCallError(error.message, retryable=True) from None
        body = request.body(f"{model}/{version}" if version else f"{model}@{alias}")
        if request.route_key:
            body["route_key"] = request.route_key
        try:
            answer = post_chat(
                _http(),
                f"{self.base_url}/v1/chat/completions",
                body,
                provider=f"the model service at {self.base_url}",
                timeout=request.timeout,
            )
        except LLMCallError as error:
            self._breaker_record(error.retryable)
            raise
        self.breaker.success()
        return answer

    def _breaker_check(self) -> None:
        if not self.breaker.allow():
            raise ModelServiceError(
                f"the model service at {self.base_url} is failing: circuit open, next probe "
                f"in {self.breaker.retry_in():.0f}s",
                retryable=True,
                circuit_open=True,
            )

    def _breaker_record(self, retryable: bool) -> None:
        if retryable:
            self.breaker.failure()
        else:
            self.breaker.success()  # it answered: the service is up

    def _predict(
        self,
        *,
        model: str,
        inputs: dict[str, Any],
        version: str = "",
        alias: str = "",
        route_key: str = "",
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """One row through ``/predict_rows``, the service's adaptively batched endpoint,
        in one request with the rows of this process's other model steps under way
        (``row_batch``). The service answers 200 with one answer per row; a row it refused
        carries its own ``error`` and ``status``."""
        row = {
            "model": model,
            "inputs": inputs,
            "version": version,
            "alias": alias,
            "route_key": route_key,
        }
        try:
            answer = batcher.predict(self.base_url, row, timeout, self._post_rows)
        except TimeoutError:
            raise self._timed_out(timeout) from None
        if "error" in answer:
            refusal = _service_error(int(answer.get("status") or 500), str(answer["error"]))
            refusal.version, refusal.alias = str(answer.get("version", "")), answer.get("alias", "")
            raise refusal
        return answer

    def expecting_row(self) -> AbstractContextManager[None]:
        """Around a model step: its row will join the request formed by the others under
        way (see ``row_batch``)."""
        return batcher.expecting(self.base_url)

    def _post_rows(self, rows: list[dict[str, Any]], timeout: float) -> list[Any]:
        from apps.core.http import internal_post_json

        try:
            response = internal_post_json(
                f"{self.base_url}/predict_rows", {"rows": rows}, timeout=timeout, client=_http()
            )
        except httpx.TimeoutException:
            raise self._timed_out(timeout) from None
        except httpx.TransportError as error:
            raise ModelServiceError(
                f"the model service at {self.base_url} is unavailable ({error.__class__.__name__})",
                retryable=True,
            ) from None
        if response.status_code != 200:
            raise _service_error(response.status_code, _error_message(response))
        answers: list[Any] = response.json()
        return answers

    def _timed_out(self, timeout: float) -> ModelServiceError:
        return ModelServiceError(
            f"the model service at {self.base_url} did not answer within {timeout:g}s",
            retryable=True,
        )

    def refresh(self, *, timeout: float = 5.0) -> bool:
        """Ask the service to re-resolve aliases now (after a promotion). Best effort: a
        service that is down re-resolves on its own within seconds of coming back."""
        try:
            response = _http().post(f"{self.base_url}/refresh", json={}, timeout=timeout)
            return response.status_code == 200
        except httpx.HTTPError:
            return False


def _service_error(status: int, message: str) -> ModelServiceError:
    return ModelServiceError(
        f"the model service answered {status}: {message}",
        retryable=status >= 500 or status == 429,
    )


def call_cost(model: str) -> float:
    """The configured estimate of one call to ``model`` (settings ``MODEL_COSTS``, else
    ``MODEL_COST_PER_CALL``): serving cost is a property of the deployment, not the flow."""
    flowgate = settings.FLOWGATE
    return float(flowgate["MODEL_COSTS"].get(model, flowgate["MODEL_COST_PER_CALL"]))


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, list) and body:
        body = body[0]
    if isinstance(body, dict):
        return str(body.get("error") or body.get("detail") or body)[:300]
    return str(body)[:300]


class ModelPredictConfig(BlockConfig):
    model: str = Field(
        min_length=1, max_length=200, pattern=NAME_PATTERN, description="Registered model name"
    )
    alias: str = Field(
        default="production",
        max_length=100,
        pattern=r"^[A-Za-z0-9_\-]*$",
        description="Registry alias to call (production, canary); ignored when version is set",
    )
    version: str = Field(
        default="", max_length=20, pattern=r"^[0-9]*$", description="Exact model version"
    )
    inputs: dict[str, Expression] = Field(
        min_length=1, max_length=100, description="Model input fields, each a CEL expression"
    )
    threshold: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Scores below this take the low_confidence port",
    )
    fallback: bool = Field(
        default=False,
        description="Take the fallback port (instead of failing and retrying) when the "
        "service is down or its circuit breaker is open",
    )
    shadow_alias: str = Field(
        default="",
        max_length=100,
        pattern=r"^[A-Za-z0-9_\-]*$",
        description="Also call this alias (e.g. canary); its answer is logged, never used",
    )
    business_key: Expression | None = Field(
        default=None,
        description="CEL giving the case's business key (e.g. a claim number): ground-truth "
        "labels posted later may name the case by it instead of by run and step",
    )

    @model_validator(mode="after")
    def _alias_or_version(self) -> ModelPredictConfig:
        if not self.alias and not self.version:
            raise ValueError("set an alias or a version")
        return self


class ModelPredictBlock(Block):
    """Predict with a registered model served by the model service.

    Output: ``label``, ``score`` (the label's probability), ``scores`` (every class), and
    ``model``/``version`` — the exact registry version that answered, also recorded in the
    step's meta and the decision audit. A service that is down, times out or errs with a 5xx
    is a retryable error; inputs that do not match the model's signature fail the step with
    the field named.
    """

    key = "model.predict"
    title = "Model prediction"
    category = "model"
    calls_out = True
    icon = "cube"
    Config = ModelPredictConfig
    ports = (DEFAULT_PORT, LOW_CONFIDENCE, FALLBACK)
    max_attempts = 3
    timeout_seconds = 15.0

    @classmethod
    def output_ports(cls, config: BlockConfig) -> tuple[str, ...]:
        ports = [DEFAULT_PORT]
        if getattr(config, "threshold", None) is not None:
            ports.append(LOW_CONFIDENCE)
        if getattr(config, "fallback", False):
            ports.append(FALLBACK)
        return tuple(ports)

    def execute(self, ctx: BlockContext, config: Any, input: Any) -> Result:
        models = ctx.service("models")
        with models.expecting_row():  # steps under way together share one request
            try:
                features = ctx.evaluate_tree(dict(config.inputs))
            except ExpressionError as error:
                raise BlockError(f"cannot build the model input: {error}") from None
            return self._predict(ctx, config, models, features)

    def _predict(self, ctx: BlockContext, config: Any, models: Any, features: Any) -> Result:
        started = time.monotonic()
        try:
            answer = models.predict(
                model=config.model,
                inputs=features,
                version=config.version,
                alias="" if config.version else config.alias,
                # A run is sticky: all its calls fall on the same side of a canary split.
                route_key=str(ctx.run_id),
                timeout=self.timeout_seconds - 1,
            )
        except ModelServiceError as error:
            self._sample_failure(ctx, config, features, error)
            wanted = {"model": config.model, "alias": config.alias, "version": config.version}
            if config.fallback and error.retryable:
                return Result(
                    output={**wanted, "error": error.message},
                    port=FALLBACK,
                    meta={**wanted, "error": error.message, "circuit_open": error.circuit_open},
                )
            raise BlockError(error.message, retryable=error.retryable, details=wanted) from None
        latency_ms = round((time.monotonic() - started) * 1000, 3)
        output = {
            "label": answer["label"],
            "score": answer["score"],
            "scores": answer["scores"],
            "model": answer["model"],
            "version": str(answer["version"]),
            "alias": answer.get("alias", ""),
        }
        low = config.threshold is not None and answer["score"] < config.threshold
        meta = {
            "model": answer["model"],
            "model_version": str(answer["version"]),
            "model_alias": answer.get("alias", ""),
            "latency_ms": latency_ms,
            "service_latency_ms": answer.get("latency_ms"),
            "device": answer.get("device", ""),
            "batch_size": answer.get("batch_size"),
            "cost": call_cost(answer["model"]),
        }
        if config.shadow_alias:
            meta["shadow"] = self._shadow(ctx, config, features)
        self._sample(ctx, config, features, output, meta)
        return Result(output=output, port=LOW_CONFIDENCE if low else DEFAULT_PORT, meta=meta)

    def _recorder(self, ctx: BlockContext) -> Any:
        """Model monitoring's recorder (see apps/monitoring); None on a dry run or in a
        context without it (block unit tests)."""
        if ctx.dry_run:
            return None
        try:
            return ctx.service("monitoring")
        except LookupError:
            return None

    def _sample_failure(
        self, ctx: BlockContext, config: Any, features: dict, error: ModelServiceError
    ) -> None:
        """A call a named version refused counts against that version's error rate."""
        recorder = self._recorder(ctx) if error.version else None
        if recorder is not None:
            recorder.record_failure(
                run_id=str(ctx.run_id),
                node_id=ctx.node_id,
                model=config.model,
                version=error.version,
                alias=error.alias,
                inputs=features,
            )

    def _sample(
        self, ctx: BlockContext, config: Any, features: dict, output: dict, meta: dict
    ) -> None:
        """Hand the answer to model monitoring, which samples it (see apps/monitoring)."""
        recorder = self._recorder(ctx)
        if recorder is None:
            return
        try:
            key = ctx.evaluate(config.business_key) if config.business_key else ""
        except ExpressionError:  # monitoring never fails a step: the case has no key
            key = ""
        recorder.record(
            run_id=str(ctx.run_id),
            node_id=ctx.node_id,
            model=output["model"],
            version=output["version"],
            alias=output["alias"],
            inputs=features,
            label=output["label"],
            score=output["score"],
            latency_ms=meta["latency_ms"],
            shadow_label=str(meta.get("shadow", {}).get("label", "")),
            business_key="" if key is None else str(key),
        )

    def _shadow(self, ctx: BlockContext, config: Any, features: dict[str, Any]) -> dict:
        """Call the shadow alias with the same input; record its answer, never fail."""
        try:
            answer = ctx.service("models").predict(
                model=config.model, inputs=features, alias=config.shadow_alias, timeout=5.0
            )
        except ModelServiceError as error:
            return {"alias": config.shadow_alias, "error": error.message}
        return {
            "alias": config.shadow_alias,
            "version": str(answer["version"]),
            "label": answer["label"],
            "score": answer["score"],
        }


def register() -> None:
    from apps.blocks.registry import register_block, register_service

    register_block(ModelPredictBlock)
    register_service("models", ModelServiceClient)
