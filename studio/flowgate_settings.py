"""The type of ``settings.FLOWGATE``: every Flowgate setting with its type, so reading one
(``settings.FLOWGATE["RUN_LEASE_SECONDS"]``) is checked by mypy like any other value. A new
setting is added here and in ``studio/settings/base.py``."""

from __future__ import annotations

from typing import NotRequired, TypedDict


class FlowgateSettings(TypedDict):
    ENCRYPTION_KEY: str
    RETIRED_ENCRYPTION_KEYS: list[str]
    STREAM_CLAIM_IDLE_SECONDS: int
    STREAM_BLOCK_MILLISECONDS: int
    MLFLOW_TRACKING_URI: str
    MODEL_SERVICE_URL: str
    MODEL_BREAKER_FAILURES: int
    MODEL_BREAKER_COOLDOWN_SECONDS: float
    MODEL_BATCH_JOIN_SECONDS: float
    MODEL_BATCH_MAX_ROWS: int
    MODEL_COST_PER_CALL: float
    MODEL_COSTS: dict[str, float]
    LLM_COST_PER_1K_TOKENS: float
    LLM_TOKEN_COSTS: dict[str, float]
    COST_CURRENCY: str
    DASHBOARD_MINUTE_ROLLUP_DAYS: int
    OPA_URL: str
    POLICY_MAX_SOURCE_BYTES: int
    POLICY_MAX_INPUT_BYTES: int
    POLICY_TIMEOUT_MS: int
    EXPRESSION_TIMEOUT_MS: int
    EXPRESSION_MAX_MEMORY_MB: int
    RATE_LIMITS: dict[str, str]  # scope ("api", "webhook", "preview") -> "<count>/<seconds>"
    SUBFLOW_MAX_DEPTH: int
    HTTP_TIMEOUT_SECONDS: float
    SSRF_ALLOWLIST: list[str]
    SYNC_WEBHOOK_TIMEOUT_SECONDS: float
    WEBHOOK_BATCH_JOIN_SECONDS: float
    MAX_DELIVERIES: int
    RUN_LEASE_SECONDS: int
    DRAIN_BATCH_SIZE: int
    DRAIN_SECONDS: float
    DRAIN_MAX_SECONDS: float
    DRAIN_MAX_RUNS: int
    IO_THREADS: int
    IO_MAX_CALLS_PER_HOST: int
    IO_MAX_CALLS_PER_FLOW: int
    IO_MAX_CALLS_PER_WORKSPACE: int
    IO_GATHER_SECONDS: float
    METRICS_TOKEN: str
    METRICS_ALLOWED_NETWORKS: list[str]
    TRACING_EXPORTER: str
    # Read with a default where it is used; not set by the base settings.
    EXPRESSION_ENV_ALLOWLIST: NotRequired[list[str]]
