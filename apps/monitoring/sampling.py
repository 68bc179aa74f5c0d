"""Recording ``model.predict`` answers: what the model block calls after each prediction.

The block gets a ``PredictionRecorder`` from ``ctx.service("monitoring")`` and hands it the
features it sent and the answer it got. Every step leaves a row with what labels are joined
by (run, step, business key hash, version, prediction, score, latency): labels posted later
count toward accuracy whether or not the step was sampled. A sampled step (the model's
``sample_rate``) also stores its input features, for drift. The row is not written here: it
goes with the engine's step batch (``apps.core.batch_rows``; a call-out's rows are inserted
with the batch recording its outcome), so monitoring costs no query, connection or commit
of its own, and a rolled-back step leaves no row. The model's sampling rate and the
workspace's PII classification are cached in the process. Fields classified as PII are
masked before the row is built, and the case's business key is stored as a keyed hash:
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
from django.utils import timezone

from apps.audit.redaction import MASK, sensitive_keys_for_workspace
from apps.core import batch_rows, jsonsafe

from .models import ModelMonitor, PredictionSample

SETTINGS_SECONDS = 10.0
_rates: dict[tuple[str, str], tuple[float, float]] = {}


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


def _storable(inputs: dict[str, Any]) -> dict[str, Any]:
    """The features as Postgres stores them: the row is written with the step batch, where
    a value it refuses would fail the batch, not just the sample."""
    row = json.loads(json.dumps(inputs, default=str))
    problem = jsonsafe.storage_problem(row)
    return {"unstorable": problem} if problem else row


class PredictionRecorder:
    """``ctx.service("monitoring")``: records a model step's answer (and samples it)."""

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
        """Record the step (with its features when it is drawn for the sample); returns
        whether it was drawn."""
        rate = sample_rate(self.workspace_id, model)
        # Sampling, not security: a fast PRNG is right here.
        sampled = rate >= 1 or (rate > 0 and random.random() < rate)  # noqa: S311
        batch_rows.insert(
            PredictionSample(
                workspace_id=self.workspace_id,
                model_name=model,
                version=version,
                alias=alias,
                run_id=run_id,
                node_id=node_id,
                business_key=business_key_digest(business_key),
                sampled=sampled,
                inputs=_storable(masked_inputs(self.workspace_id, inputs)) if sampled else {},
                label=str(label)[:200],
                score=float(score),
                latency_ms=latency_ms,
                shadow_label=shadow_label[:200],
                created_at=timezone.now(),
                failed=failed,
            )
        )
        return sampled

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
