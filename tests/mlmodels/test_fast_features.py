"""The model service's compiled feature step (workers/serving/fast_features.py): a
pipeline it compiles answers exactly what the pipeline answers, and anything it cannot
compute goes through scikit-learn as before."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from apps.mlmodels.training import (
    _claim_fraud_pipeline,
    _ticket_triage_pipeline,
    claim_fraud_data,
    ticket_triage_data,
)
from workers.serving.fast_features import compile_features, scorer

CLAIM_TYPES = {
    "amount": "double",
    "claimant_age": "double",
    "days_since_policy_start": "double",
    "prior_claims": "double",
    "channel": "string",
}


def _fitted(pipeline, labels_of=None):
    features, labels = claim_fraud_data(rows=300, seed=3)
    if labels_of is not None:
        labels = labels_of(features)
    return pipeline.fit(features, labels)


def _rows(count: int, seed: int = 5) -> list[dict]:
    """Rows as ``coerce_inputs`` gives them, with channels the model never saw."""
    rng = np.random.default_rng(seed)
    return [
        {
            "amount": float(rng.uniform(0, 40000)),
            "claimant_age": float(rng.integers(18, 95)),
            "days_since_policy_start": float(rng.integers(0, 4000)),
            "prior_claims": float(rng.integers(0, 9)),
            "channel": str(rng.choice(["web", "phone", "agent", "fax", ""])),
        }
        for _ in range(count)
    ]


def _score(pipeline):
    features = compile_features(pipeline, CLAIM_TYPES)
    assert features is not None
    return scorer(pipeline, features, "predict_proba")


def test_a_compiled_pipeline_answers_bit_for_bit_what_the_pipeline_answers():
    pipeline = _fitted(_claim_fraud_pipeline(C=1.0))
    score = _score(pipeline)
    rows = _rows(300)
    assert np.array_equal(score(rows), pipeline.predict_proba(pd.DataFrame(rows)))
    for row in rows[:50]:  # one row at a time too, as a lone step sends it
        assert np.array_equal(score([row]), pipeline.predict_proba(pd.DataFrame([row])))


def test_a_multiclass_pipeline_too():
    def three_classes(features):
        return np.where(
            features["amount"] > 4000, "high", np.where(features["channel"] == "web", "web", "low")
        )

    pipeline = _fitted(_claim_fraud_pipeline(C=0.5), three_classes)
    assert len(pipeline.classes_) == 3
    rows = _rows(200, seed=9)
    assert np.array_equal(_score(pipeline)(rows), pipeline.predict_proba(pd.DataFrame(rows)))


def test_an_unknown_category_the_encoder_refuses_gets_scikit_learns_own_error():
    pipeline = _claim_fraud_pipeline(C=1.0)
    pipeline.steps[0][1].transformers[1][1].set_params(handle_unknown="error")
    score = _score(_fitted(pipeline))
    known = {**_rows(1)[0], "channel": "web"}
    assert np.array_equal(score([known]), pipeline.predict_proba(pd.DataFrame([known])))
    with pytest.raises(ValueError, match="unknown categor"):
        score([{**known, "channel": "fax"}])


def test_what_it_cannot_compute_is_left_to_scikit_learn():
    text, labels = ticket_triage_data(rows=120)
    triage = _ticket_triage_pipeline(C=1.0).fit(text, labels)
    assert compile_features(triage, {"text": "string"}) is None  # a TF-IDF step
    claims = _fitted(_claim_fraud_pipeline(C=1.0))
    # float32 columns would be scaled in float32 by scikit-learn
    assert compile_features(claims, {**CLAIM_TYPES, "amount": "float"}) is None
    assert compile_features(claims.steps[-1][1], CLAIM_TYPES) is None  # not a pipeline
