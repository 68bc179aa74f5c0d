"""Sampling ``model.predict`` answers: what the model block calls after each prediction.

The block gets a ``PredictionRecorder`` from ``ctx.service("monitoring")`` and hands it the
features it sent and the answer it got. One sampled step costs one compact INSERT in the
step's own transaction (so a rolled-back step leaves no sample) and no other query: the
model's sampling rate and the workspace's PII classification are cached in the process.
Fields classified as PII are masked before the row is written, and the case's business key is stored as a keyed hash:
raw values never reach it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.audit.redaction import MASK, sensitive_keys_for_workspace

from .models import ModelMonitor, PredictionSample

SETTINGS_SECONDS = 10.0
_rates: dict[tuple[str, str], tuple[float, float]] = {}

# Built from our own table name only; every value is a parameter.
_INSERT = (
    f"INSERT INTO {PredictionSample._meta.db_table} (workspace_id, model_name, version, alias,"  # noqa: S608
    " run_id, node_id, business_key, inputs, label, score, latency_ms, shadow_label,"
    " created_at, failed, actual, label_source)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, '', '')"
)


def sample_rate(workspace_id: str, model: str) -> float:
    """The model's sampling rate (default 1.0), read at most every few seconds."""
    key = (workspace_id, model)
    now = time.monotonic()
    cached = _rates.get(key)
    if cached and cached[1] > now:
        return cached[0]
    rate = (
        ModelMonitor.objects.filter(workspace_id=workspace_id, model_name=model)
        .values_list("sample_rate", flat=True)
        .first()
    )
    value = 1.0 if rate is None else float(rate)
    _rates[key] = (value, now + SETTINGS_SECONDS)
    return value


def forget_sample_rate(workspace_id: Any, model: str) -> None:
    _rates.pop((str(workspace_id), model), None)


def masked_inputs(workspace_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """``inputs`` with every field the workspace classifies as PII masked."""
    sensitive = sensitive_keys_for_workspace(workspace_id)
    if not sensitive:
        return inputs
    return {name: MASK if name.lower() in sensitive else value for name, value in inputs.items()}


def business_key_digest(key: str) -> str:
    """What is stored for a case's business key: a keyed hash, so a key that is itself
    personal data (an email, a policy number) is never stored raw; labels posted with the
    key are matched through the same hash."""
    if not key:
        return ""
    secret = settings.SECRET_KEY.encode()
    return hmac.new(secret, b"business-key:" + key.encode(), hashlib.sha256).hexdigest()[:40]


class PredictionRecorder:
    """``ctx.service("monitoring")``: records a sample of a model step's answer."""

    def __init__(self, workspace_id: str) -> None:
        self.workspace_id = str(workspace_id)

    def record(
        self,
        *,
        run_id: str,
        node_id: str,
        model: str,
        version: str,
        alias: str,
        inputs: dict[str, Any],
        label: str,
        score: float,
        latency_ms: float | None = None,
        shadow_label: str = "",
        business_key: str = "",
        failed: bool = False,
    ) -> bool:
        """Write the sample when this step is drawn; returns whether it was."""
        rate = sample_rate(self.workspace_id, model)
        # Sampling, not security: a fast PRNG is right here.
        if rate <= 0 or (rate < 1 and random.random() >= rate):  # noqa: S311
            return False
        row = masked_inputs(self.workspace_id, inputs)
        with connection.cursor() as cursor:
            cursor.execute(
                _INSERT,
                (
                    self.workspace_id,
                    model,
                    version,
                    alias,
                    run_id,
                    node_id,
                    business_key_digest(business_key),
                    json.dumps(row, default=str),
                    str(label)[:200],
                    float(score),
                    latency_ms,
                    shadow_label[:200],
                    timezone.now(),
                    failed,
                ),
            )
        return True

    def record_failure(
        self, *, run_id: str, node_id: str, model: str, version: str, alias: str, inputs: dict
    ) -> bool:
        """A call that ``version`` refused: sampled like an answer, counted as its error."""
        return self.record(
            run_id=run_id,
            node_id=node_id,
            model=model,
            version=version,
            alias=alias,
            inputs=inputs,
            label="",
            score=0.0,
            failed=True,
        )
