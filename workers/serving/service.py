"""The model service: BentoML serving every model registered in MLflow.

``POST /predict`` with ``{"model": "claim-fraud", "alias": "production", "inputs": [{...}]}``
(or ``"version": "2"`` instead of an alias) answers ``{"model", "version", "predictions":
[{"label", "score", "scores"}]}``: the exact version that answered is in every response.

Aliases are resolved against the registry and cached for a few seconds; ``POST /refresh``
(which Flowgate calls after every promotion) drops that cache, so moving ``production`` to
another version switches the next request to it with no restart (each version is loaded once
and kept). Canary traffic: when a model has a ``canary`` alias and a canary share (registered
model tag ``flowgate.canary_share``, 0-100), a call for ``production`` that carries a
``route_key`` (Flowgate sends the run id) is served by the canary for that share of keys,
chosen by a hash of the key, so one run always gets the same version. Every answer names the
alias and version that served it. Inputs are checked against the version's MLflow signature first, so a missing or
mistyped field is a 400 that names it, never a 500 from inside the model.

Run it with ``bentoml serve workers.serving.service:ModelService --port 3001``; it finds the
registry through ``MLFLOW_TRACKING_URI``. ``/livez`` and ``/readyz`` are BentoML's probes
(ready once the registry answers); ``GET /info`` (POST) lists what is loaded.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from typing import Annotated, Any

import bentoml
from bentoml.exceptions import InvalidArgument, NotFound, ServiceUnavailable
from bentoml.validators import ContentType

from apps.mlmodels.training import canary_share_of
from workers.serving import fast_features, openai_api, tracing
from workers.serving.lm_batching import SharedForwardPasses

logger = logging.getLogger("flowgate.serving")

# A registry that is down must fail a request in seconds, not after MLflow's long backoff.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")

MAX_ROWS = 256
ALIAS_TTL = float(os.environ.get("FLOWGATE_MODEL_ALIAS_TTL", "5"))
# A request is scored on the event loop only when its rows' measured scoring time adds up
# to no more than this: longer work (a big batch, a heavy model) would hold up every other
# request, health checks included, so it goes to a thread.
ON_LOOP_SECONDS = 0.005
NUMERIC_TYPES = {"double", "float", "long", "integer"}
PRODUCTION, CANARY = "production", "canary"

# The answers' content type, given: without it BentoML works it out for every response by
# generating the return type's JSON schema (pydantic), ~0.9 ms of a 3 ms request's CPU.
JSON = ContentType("application/json")


def canary_bucket(model: str, route_key: str) -> int:
    """0-99, fixed for a model and key: keys in buckets below the share go to the canary."""
    digest = hashlib.sha256(f"{model}:{route_key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100


def _device() -> str:
    """CUDA when a GPU is visible and torch can use it; these scikit-learn models run on the
    CPU either way, the device is reported so operators see what the service found. Without
    an NVIDIA driver torch is not imported here: the service pays for its import (seconds,
    and about 200 MB) only when it loads a transformers model."""
    if not os.path.exists("/proc/driver/nvidia/version"):
        return "cpu"
    try:
        import torch

        if torch.cuda.is_available():
            return "cuda"
    except ImportError:
        pass
    return "cpu"


def coerce_inputs(rows: list[Any], schema: Any) -> list[dict[str, Any]]:
    """Check ``rows`` against an MLflow input schema and convert JSON numbers to the column
    types; raise InvalidArgument naming the first bad field."""
    if not rows:
        raise InvalidArgument("inputs is empty")
    if len(rows) > MAX_ROWS:
        raise InvalidArgument(f"at most {MAX_ROWS} input rows per request")
    if schema is None:
        return rows
    columns = [(spec.name, str(spec.type)) for spec in schema.inputs]
    coerced = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InvalidArgument(f"inputs[{index}] must be an object")
        unknown = sorted(set(row) - {name for name, _ in columns})
        if unknown:
            raise InvalidArgument(f"inputs[{index}] has unknown field '{unknown[0]}'")
        clean = {}
        for name, kind in columns:
            kind = kind.rsplit(".", 1)[-1].lower()
            if name not in row or row[name] is None:
                raise InvalidArgument(f"inputs[{index}] is missing field '{name}'")
            value = row[name]
            if kind in NUMERIC_TYPES:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise InvalidArgument(f"field '{name}' must be a number, not {value!r}")
                value = float(value) if kind in ("double", "float") else int(value)
            elif kind == "string":
                if not isinstance(value, str):
                    raise InvalidArgument(f"field '{name}' must be a string, not {value!r}")
            elif kind == "boolean" and not isinstance(value, bool):
                raise InvalidArgument(f"field '{name}' must be true or false")
            clean[name] = value
        coerced.append(clean)
    return coerced


LANGUAGE_KIND = "language"  # model metadata ``flowgate_kind`` of a language model


def _registry_unreachable(error: BaseException) -> bool:
    """Whether loading failed because MLflow (or its artifact store) could not be reached,
    rather than because of the version itself."""
    import requests
    from mlflow.exceptions import MlflowException

    if isinstance(error, ConnectionError | TimeoutError | requests.RequestException):
        return True

    return isinstance(error, MlflowException) and (
        "API request to" in error.message or "Max retries exceeded" in error.message
    )


def _is_language(loaded: Any) -> bool:
    return (loaded.metadata.metadata or {}).get("flowgate_kind") == LANGUAGE_KIND


def _scoring(loaded: Any) -> tuple[Callable[[list[dict[str, Any]]], Any], list[str]]:
    """How a classic version scores rows (checked by ``coerce_inputs``) and its class labels.

    A scikit-learn pipeline whose feature step ``fast_features`` can compute goes straight
    to the pipeline with the rows: ``coerce_inputs`` has already given every field its
    signature type, which is what MLflow's schema enforcement would do again, and the
    pandas work of the column transformer was most of a request's time. Any other model
    is scored through MLflow's ``predict`` on a DataFrame, as before."""
    import pandas as pd

    raw = loaded.get_raw_model()
    classes = [str(label) for label in raw.classes_]
    pyfunc = loaded.metadata.flavors.get("python_function", {})
    schema = loaded.metadata.get_input_schema()
    if (
        pyfunc.get("loader_module") == "mlflow.sklearn"
        and pyfunc.get("predict_fn") == "predict_proba"
        and schema is not None
        and schema.has_input_names()
        and loaded.metadata.get_params_schema() is None
    ):
        types = {spec.name: str(spec.type).rsplit(".", 1)[-1].lower() for spec in schema.inputs}
        features = fast_features.compile_features(raw, types)
        if features is not None:
            return fast_features.scorer(raw, features, "predict_proba"), classes
    return (lambda rows: loaded.predict(pd.DataFrame(rows))), classes


def _decoder(loaded: Any) -> Any:
    """A loaded language model's decoding interface (``apps/mlmodels/decoding.py``): the
    pyfunc's ``lm`` (the toy), or a transformers-flavor pipeline wrapped around it."""
    if "transformers" not in loaded.metadata.flavors:
        return loaded.unwrap_python_model().lm
    from workers.serving.transformers_lm import TransformersLanguageModel

    return TransformersLanguageModel.from_pipeline(
        loaded.get_raw_model(), loaded.metadata.metadata or {}
    )


@bentoml.service(
    name="flowgate_models", traffic={"timeout": 30}, workers=1, **tracing.service_options()
)
@bentoml.asgi_app(openai_api.app, path="/v1")
class ModelService:
    def __init__(self) -> None:
        # Imported here, at start-up, so the first prediction does not pay for them.
        import mlflow.pyfunc
        import mlflow.sklearn  # noqa: F401
        import pandas  # noqa: F401
        import sklearn.pipeline  # noqa: F401
        from mlflow import MlflowClient

        tracing.install_exporter()
        self.tracking_uri = os.environ.get("MLFLOW_TRACKING_URI", "http://127.0.0.1:5001")
        self.client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        self.device = _device()
        self._models: dict[tuple[str, str], Any] = {}
        self._decoders: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self._resolved: dict[str, tuple[tuple[dict[str, str], int], float]] = {}
        self._checked: set[tuple[str, str]] = set()
        # id(loaded version) → (rows → class probabilities, class labels); see _scoring.
        self._scoring: dict[int, tuple[Callable[[list[dict[str, Any]]], Any], list[str]]] = {}
        # id(loaded version) → seconds per row of its last scoring (see ON_LOOP_SECONDS).
        self._row_seconds: dict[int, float] = {}
        logger.info("model service on %s, registry %s", self.device, self.tracking_uri)
        openai_api.bind(self)
        threading.Thread(target=self._warm_up, name="warm-up", daemon=True).start()

    def _warm_up(self, seconds: float = 120.0) -> None:
        """Load every alias's version in the background once the registry answers, so the
        first request for a live model does not pay for loading it (a few seconds)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                models = self.client.search_registered_models(max_results=100)
            except Exception:
                time.sleep(2.0)
                continue
            for registered in models:
                for version in sorted(set((registered.aliases or {}).values())):
                    try:
                        self._load(registered.name, str(version))
                    except Exception as error:
                        logger.warning(
                            "could not preload %s v%s: %s", registered.name, version, error
                        )
            return

    def __is_ready__(self) -> bool:
        try:
            self.client.search_registered_models(max_results=1)
        except Exception:
            return False
        return True

    def _resolve(
        self, model: str, version: str, alias: str, route_key: str = ""
    ) -> tuple[str, str]:
        """(version, alias) to serve. Exact versions are served as asked; an alias is looked
        up in the model's aliases (cached for ``ALIAS_TTL`` seconds; ``POST /refresh`` drops
        the cache right after a promotion), and ``production`` with a ``route_key`` may be
        served by the canary for its share of keys."""
        if version:
            return self._exact(model, version), ""
        alias = alias or PRODUCTION
        aliases, share = self._routing(model)
        if (
            alias == PRODUCTION
            and route_key
            and CANARY in aliases
            and canary_bucket(model, route_key) < share
        ):
            alias = CANARY
        if alias not in aliases:
            raise NotFound(f"model {model!r} alias {alias} not found")
        return aliases[alias], alias

    def _exact(self, model: str, version: str) -> str:
        if (model, version) not in self._checked:
            self._registry(f"version {version}", self.client.get_model_version, model, version)
            self._checked.add((model, version))
        return version

    def _routing(self, model: str) -> tuple[dict[str, str], int]:
        """The model's aliases and canary share, one registry call per ``ALIAS_TTL``."""
        cached = self._resolved.get(model)
        if cached and time.monotonic() - cached[1] < ALIAS_TTL:
            return cached[0]
        registered = self._registry("", self.client.get_registered_model, model)
        aliases = {name: str(number) for name, number in (registered.aliases or {}).items()}
        routing = (aliases, canary_share_of(dict(registered.tags or {})))
        self._resolved[model] = (routing, time.monotonic())
        return routing

    def _registry(self, wanted: str, call: Any, model: str, *args: Any) -> Any:
        from mlflow.exceptions import MlflowException, RestException

        try:
            return call(model, *args)
        except RestException as error:
            what = f"model {model!r} {wanted}".strip()
            raise NotFound(f"{what} not found: {error.message}") from None
        except MlflowException as error:
            raise ServiceUnavailable(
                f"the model registry is unavailable: {error.message}"
            ) from None

    def _load(self, model: str, version: str) -> Any:
        key = (model, version)
        with self._lock:
            loaded = self._models.get(key)
            if loaded is None:
                import mlflow.pyfunc

                started = time.monotonic()
                mlflow.set_tracking_uri(self.tracking_uri)
                mlflow.set_registry_uri(self.tracking_uri)
                try:
                    loaded = mlflow.pyfunc.load_model(f"models:/{model}/{version}")
                    if _is_language(loaded):
                        self._decoders[key] = SharedForwardPasses(_decoder(loaded))
                except ImportError as error:
                    # A transformers model in a service started without its environment.
                    raise ServiceUnavailable(
                        f"model {model!r} version {version} needs {error.name or error}, "
                        "which the model service's environment lacks (scripts/bootstrap.sh "
                        "installs torch and transformers into .venv-models)"
                    ) from None
                self._models[key] = loaded
                logger.info(
                    "loaded %s version %s in %.2fs", model, version, time.monotonic() - started
                )
        return loaded

    def language_model(
        self, model: str, version: str, alias: str, route_key: str
    ) -> tuple[Any, tuple[str, str]]:
        """The language model (``stream``/``choose``/``guided_json``: a
        ``decoding.TokenDecoder``) and the (version, alias) that serve a ``/v1`` request; a
        classic model there is a 400."""
        resolved, served_alias = self._resolve(model, version, alias, route_key)
        loaded = self._load(model, resolved)
        if not _is_language(loaded):
            raise InvalidArgument(f"model {model!r} is not a language model: call /predict")
        return self._decoders[(model, resolved)], (resolved, served_alias)

    def language_model_names(self) -> list[str]:
        return sorted(name for (name, _), loaded in self._models.items() if _is_language(loaded))

    def _score(self, loaded: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if _is_language(loaded):
            raise InvalidArgument("this is a language model: call /v1/chat/completions")

        scoring = self._scoring.get(id(loaded))
        if scoring is None:  # once per loaded version (loads are kept, so ids are too)
            scoring = self._scoring[id(loaded)] = _scoring(loaded)
        score, classes = scoring
        started = time.perf_counter()
        probabilities = score(rows)
        self._row_seconds[id(loaded)] = (time.perf_counter() - started) / max(len(rows), 1)
        predictions = []
        for row in probabilities:
            scores = {label: round(float(p), 6) for label, p in zip(classes, row, strict=True)}
            label = max(scores, key=scores.__getitem__)
            predictions.append({"label": label, "score": scores[label], "scores": scores})
        return predictions

    @bentoml.api(route="/predict")
    def predict(
        self,
        model: str,
        inputs: list[dict[str, Any]],
        version: str = "",
        alias: str = "",
        route_key: str = "",
    ) -> Annotated[dict[str, Any], JSON]:
        started = time.monotonic()
        resolved, served_alias = self._resolve(model, version, alias, route_key)
        loaded = self._load(model, resolved)
        rows = coerce_inputs(inputs, loaded.metadata.get_input_schema())
        return {
            "model": model,
            "version": resolved,
            "alias": served_alias,
            "predictions": self._score(loaded, rows),
            "device": self.device,
            "latency_ms": round((time.monotonic() - started) * 1000, 3),
        }

    @bentoml.api(route="/predict_rows")
    async def predict_rows(
        self, rows: list[dict[str, Any]]
    ) -> Annotated[list[dict[str, Any]], JSON]:
        """Rows scored together: rows for the same model version are scored as one batch.
        Each row is ``{"model", "alias" | "version", "route_key", "inputs": {...}}``; each
        answer ``{"model", "version", "alias", "label", "score", "scores", "device",
        "batch_size"}`` or ``{"error", "status"}`` for that row alone (with ``model``,
        ``version`` and ``alias`` when a version refused its inputs). ``batch_size`` is how
        many rows this call scored together.

        The batching is the caller's: Flowgate sends the rows of the model steps under way
        in a process as one request (apps/mlmodels/row_batch.py). BentoML's adaptive
        batching came on top of that and cost more than it saved: its dispatcher held a
        lone request for a millisecond or more and handed each batch to a thread, and
        merged at most a few requests. A request is scored here, on the event loop, when
        every row's version is loaded, its alias resolved, and the rows' scoring measured
        last time adds up to ``ON_LOOP_SECONDS`` at most (a millisecond of arithmetic for
        a few rows of the demo models); one that needs the registry, a version's first
        load (seconds) or longer scoring is answered from a thread, so the loop keeps
        serving the others."""
        if sum(self._seconds_on_loop(row) for row in rows) <= ON_LOOP_SECONDS:
            return self._predict_rows(rows)
        return await asyncio.to_thread(self._predict_rows, rows)

    def _seconds_on_loop(self, row: Any) -> float:
        """What scoring ``row`` on the event loop would take, as last measured for its
        version(s); infinite when it needs the registry or a load (its version is not
        loaded, or its alias, any alias the canary split may pick, not resolved recently)
        or was never timed."""
        if not isinstance(row, dict) or "model" not in row:
            return 0.0  # refused on the spot
        model, version = str(row["model"]), str(row.get("version") or "")
        if version:
            versions = {version} if (model, version) in self._checked else set()
        else:
            cached = self._resolved.get(model)
            fresh = cached is not None and time.monotonic() - cached[1] < ALIAS_TTL
            versions = set(cached[0][0].values()) if cached is not None and fresh else set()
        loaded = [self._models.get((model, number)) for number in versions]
        if not loaded or any(entry is None for entry in loaded):
            return math.inf
        return max(self._row_seconds.get(id(entry), math.inf) for entry in loaded)

    def _predict_rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        started = time.monotonic()
        answers: list[dict[str, Any]] = [{} for _ in rows]
        groups: dict[tuple[str, str], list[int]] = {}
        served: dict[int, str] = {}
        for index, row in enumerate(rows):
            try:
                model, version = str(row["model"]), str(row.get("version") or "")
                resolved, served[index] = self._resolve(
                    model, version, str(row.get("alias") or ""), str(row.get("route_key") or "")
                )
                groups.setdefault((model, resolved), []).append(index)
            except (KeyError, TypeError):
                answers[index] = {"error": "each row needs a model and inputs", "status": 400}
            except (InvalidArgument, NotFound, ServiceUnavailable) as error:
                answers[index] = {"error": str(error), "status": int(error.error_code)}
        for (model, version), indexes in groups.items():
            try:
                self._answer_group(rows, answers, served, model, version, indexes)
            except Exception as error:
                # This version's rows fail, no one else's; a registry that cannot be
                # reached is nobody's fault, anything else is the version's (monitoring
                # counts it in that version's error rate: a crashing canary is rolled back).
                unreachable = _registry_unreachable(error)
                logger.exception("%s version %s failed to answer", model, version)
                for index in indexes:
                    answers[index] = (
                        {"error": f"the model registry is unavailable: {error}", "status": 503}
                        if unreachable
                        else {
                            "error": f"version {version} of {model} failed: "
                            f"{type(error).__name__}: {str(error)[:300]}",
                            "status": 500,
                            "model": model,
                            "version": version,
                            "alias": served[index],
                        }
                    )
        latency_ms = round((time.monotonic() - started) * 1000, 3)
        for answer in answers:
            if "error" not in answer:
                answer["latency_ms"] = latency_ms
                answer["batch_size"] = len(rows)
        return answers

    def _answer_group(
        self,
        rows: list[dict[str, Any]],
        answers: list[dict[str, Any]],
        served: dict[int, str],
        model: str,
        version: str,
        indexes: list[int],
    ) -> None:
        """Score the rows of one model version (``predict_rows``); a load or scoring
        failure propagates, to fail this version's rows only."""
        loaded = self._load(model, version)
        if _is_language(loaded):
            for index in indexes:
                answers[index] = {
                    "error": f"model {model!r} is a language model: use an ai.* block",
                    "status": 400,
                }
            return
        schema = loaded.metadata.get_input_schema()
        valid = []
        # A refused row names the version that refused it: monitoring counts a version's
        # errors (a canary whose signature no longer fits the flows' inputs, say).
        served_by = {"model": model, "version": version}
        for index in indexes:
            try:
                valid.append((index, coerce_inputs([rows[index].get("inputs")], schema)[0]))
            except InvalidArgument as error:
                answers[index] = {
                    "error": str(error),
                    "status": 400,
                    **served_by,
                    "alias": served[index],
                }
        if not valid:
            return
        scored = self._score(loaded, [features for _, features in valid])
        for (index, _), prediction in zip(valid, scored, strict=True):
            answers[index] = {
                "model": model,
                "version": version,
                "alias": served[index],
                **prediction,
                "device": self.device,
            }

    @bentoml.api(route="/refresh")
    def refresh(self) -> dict[str, Any]:
        """Forget resolved aliases: the next request asks the registry again."""
        self._resolved.clear()
        return {"refreshed": True}

    @bentoml.api(route="/info")
    def info(self) -> dict[str, Any]:
        """What is loaded; for a language model also how its decodes shared forward passes
        (``decode_steps`` distributions asked, ``forward_passes`` model calls that answered
        them: fewer when concurrent requests were batched, ``lm_batching.py``)."""
        decoders = dict(self._decoders)
        return {
            "registry": self.tracking_uri,
            "device": self.device,
            "loaded": [
                {"model": name, "version": version}
                | (decoders[(name, version)].counters() if (name, version) in decoders else {})
                for name, version in list(self._models)
            ],
        }
