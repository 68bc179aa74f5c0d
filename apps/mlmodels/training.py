"""Demo models, trained here from data generated here: nothing is downloaded.

``train_demo_models()`` generates two synthetic data sets with a fixed seed, trains a
scikit-learn pipeline on each, logs parameters, metrics and a signature to MLflow and
registers each as a named model (two versions each: a weaker baseline and a better one).
The first version gets the ``production`` alias so flows can call the model at once; the
second waits for someone to promote it through the policy gate.

Each version is tagged with the sha256 of its model files (``flowgate.artifact_sha256``)
so the promotion gate can check that the artifact it would serve is the one registered.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

EXPERIMENT = "flowgate-demo"
SHA256_TAG = "flowgate.artifact_sha256"
THRESHOLDS_TAG = "flowgate.thresholds"
# Registered model tag: the share (0-100) of production calls the canary version serves.
CANARY_SHARE_TAG = "flowgate.canary_share"
# The workspace whose admins move the model's aliases. Every workspace shares the registry;
# without an owner, any workspace's admins may (see registry.ModelInfo.managed_by).
OWNER_TAG = "flowgate.workspace"
CLAIM_FRAUD = "claim-fraud"
TICKET_TRIAGE = "ticket-triage"
SUPPORT_WRITER = "support-writer"
SUPPORT_WRITER_GPT = "support-writer-gpt"


def canary_share_of(tags: dict[str, str]) -> int:
    """The canary share recorded in a registered model's tags, 0-100 (0 when unset)."""
    try:
        return min(100, max(0, int(tags.get(CANARY_SHARE_TAG, "0"))))
    except ValueError:
        return 0


CHANNELS = ("web", "phone", "agent")


@dataclass(frozen=True)
class TrainedVersion:
    name: str
    version: str
    run_id: str
    metrics: dict[str, float]
    sha256: str


def claim_fraud_data(rows: int = 1200, seed: int = 7):
    """Insurance claims: amount, claimant age, days since the policy started, prior claims
    and channel; ``fraud`` is likelier for large, early, repeat, web claims."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    amount = rng.gamma(2.0, 1500.0, rows).round(2)
    age = rng.integers(18, 85, rows).astype(float)
    days = rng.integers(0, 3650, rows).astype(float)
    prior = rng.poisson(0.6, rows).astype(float)
    channel = rng.choice(CHANNELS, rows, p=(0.5, 0.3, 0.2))
    logit = (
        -1.5
        + amount / 2500.0
        - days / 1500.0
        + 0.9 * prior
        + np.where(channel == "web", 0.8, 0.0)
        - (age - 50.0) / 60.0
        + rng.normal(0.0, 0.6, rows)
    )
    label = np.where(logit > 0, "fraud", "legit")
    features = pd.DataFrame(
        {
            "amount": amount,
            "claimant_age": age,
            "days_since_policy_start": days,
            "prior_claims": prior,
            "channel": channel,
        }
    )
    return features, label


_TICKET_PHRASES = {
    "urgent": (
        "production is down",
        "cannot log in at all",
        "payment failed for every customer",
        "data loss after the update",
        "site returns error 500",
        "security breach suspected",
    ),
    "normal": (
        "report export is slow",
        "invoice shows the wrong address",
        "need help configuring a webhook",
        "password reset email is late",
        "dashboard chart looks wrong",
    ),
    "low": (
        "feature request for dark mode",
        "typo on the pricing page",
        "question about the roadmap",
        "thanks for the quick help",
        "how do I change my avatar",
    ),
}
_TICKET_FILLERS = ("hello team", "please advise", "since this morning", "for our account", "")


def ticket_triage_data(rows: int = 600, seed: int = 11):
    """Support tickets as short texts labelled urgent / normal / low."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    labels = rng.choice(list(_TICKET_PHRASES), rows, p=(0.3, 0.45, 0.25))
    texts = []
    for label in labels:
        phrase = rng.choice(_TICKET_PHRASES[label])
        # A little label noise so the metrics are not all 1.0.
        if rng.random() < 0.08:
            phrase = rng.choice(_TICKET_PHRASES[rng.choice(list(_TICKET_PHRASES))])
        filler = rng.choice(_TICKET_FILLERS)
        texts.append(f"{filler} {phrase}".strip())
    return pd.DataFrame({"text": texts}), labels


def _claim_fraud_pipeline(C: float):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = ["amount", "claimant_age", "days_since_policy_start", "prior_claims"]
    columns = ColumnTransformer(
        [
            ("numeric", StandardScaler(), numeric),
            ("channel", OneHotEncoder(handle_unknown="ignore"), ["channel"]),
        ]
    )
    return Pipeline([("features", columns), ("classifier", LogisticRegression(C=C))])


def _ticket_triage_pipeline(C: float):
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    columns = ColumnTransformer([("text", TfidfVectorizer(ngram_range=(1, 2)), "text")])
    return Pipeline([("features", columns), ("classifier", LogisticRegression(C=C))])


DEMO_MODELS: dict[str, dict[str, Any]] = {
    CLAIM_FRAUD: {
        "description": "Claim fraud risk (tabular): fraud or legit, with a probability.",
        "data": claim_fraud_data,
        "pipeline": _claim_fraud_pipeline,
        "versions": ({"C": 0.001}, {"C": 1.0}),
        "thresholds": {"accuracy": 0.8, "f1_macro": 0.7},
    },
    TICKET_TRIAGE: {
        "description": "Support ticket triage (text): urgent, normal or low.",
        "data": ticket_triage_data,
        "pipeline": _ticket_triage_pipeline,
        "versions": ({"C": 0.01}, {"C": 10.0}),
        "thresholds": {"accuracy": 0.8, "f1_macro": 0.7},
    },
    # The toy language model (lm_training.py): its own trainer, same registry conventions.
    SUPPORT_WRITER: {"versions": ({"order": 4}, {"order": 6}), "train": "language"},
    # A small GPT-2-style model, transformers flavor, trained in the model service's own
    # environment (workers/serving/train_lm.py, where torch and transformers are).
    SUPPORT_WRITER_GPT: {"versions": ({"layers": 2},), "train": "transformers"},
}


def artifact_sha256(directory: Path) -> str:
    """sha256 over a downloaded MLflow model directory: every file's relative path and bytes,
    in sorted order (``registered_model_meta``, written by the download itself, excluded)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(directory).rglob("*") if p.is_file()):
        relative = path.relative_to(directory).as_posix()
        if relative == "registered_model_meta":
            continue
        digest.update(relative.encode() + b"\0")
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 16), b""):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


REFERENCE_PROFILE = "monitoring/reference_profile.json"
PROFILE_QUANTILES = 201


def reference_profile(features: Any, predictions: Any = None) -> dict[str, Any]:
    """The profile drift is judged against: for each numeric column its quantiles, for each
    other column its category frequencies; ``predictions`` (a frame with ``label`` and
    ``score``) profiled the same way under ``prediction``."""
    profile: dict[str, Any] = {"rows": len(features), "features": _profile(features)}
    if predictions is not None:
        profile["prediction"] = _profile(predictions)
    return profile


def _profile(frame: Any) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    profiled: dict[str, Any] = {}
    for column in frame.columns:
        values = frame[column].dropna()
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            points = np.quantile(values.astype(float), np.linspace(0, 1, PROFILE_QUANTILES))
            profiled[str(column)] = {"type": "numeric", "quantiles": [float(v) for v in points]}
        else:
            shares = values.astype(str).value_counts(normalize=True)
            profiled[str(column)] = {
                "type": "categorical",
                "frequencies": {str(k): round(float(v), 6) for k, v in shares.items()},
            }
    return profiled


def log_reference_profile(features: Any, predictions: Any = None) -> dict[str, Any]:
    """Log the training data's profile to the active MLflow run, for drift monitoring.

    Call it inside ``mlflow.start_run()`` in your own training code, with the training
    features (a pandas DataFrame whose columns are the model's signature fields) and,
    optionally, the model's predictions on them (a frame with ``label`` and ``score``)::

        with mlflow.start_run():
            model.fit(x_train, y_train)
            log_reference_profile(x_train, predictions_frame(model, x_train))
            mlflow.sklearn.log_model(model, ...)

    Flowgate reads it from the registered version's run when it computes drift."""
    import mlflow

    profile = reference_profile(features, predictions)
    mlflow.log_dict(profile, REFERENCE_PROFILE)
    return profile


def predictions_frame(pipeline: Any, features: Any) -> Any:
    """A classifier's predicted label and its probability per row, as the model service
    answers them (``label``, ``score``)."""
    import pandas as pd

    probabilities = pipeline.predict_proba(features)
    best = probabilities.argmax(axis=1)
    return pd.DataFrame(
        {
            "label": [str(pipeline.classes_[index]) for index in best],
            "score": probabilities.max(axis=1),
        }
    )


def train_and_register(
    name: str,
    *,
    params: dict[str, Any],
    rows: int | None = None,
    tracking_uri: str,
    registered_name: str = "",
    shuffle_labels: bool = False,
) -> TrainedVersion:
    """Train one version of a demo model and register it in the MLflow at ``tracking_uri``
    (as ``registered_name`` when given). ``shuffle_labels`` trains a deliberately weak
    version on labels shuffled against their rows, to exercise canary analysis."""

    import mlflow
    import mlflow.sklearn
    import sklearn
    from mlflow import MlflowClient
    from mlflow.models import infer_signature
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import train_test_split

    spec = DEMO_MODELS[name]
    features, labels = spec["data"](**({"rows": rows} if rows else {}))
    if shuffle_labels:
        import numpy as np

        labels = np.random.default_rng(5).permutation(labels)
    name = registered_name or name
    x_train, x_test, y_train, y_test = train_test_split(
        features, labels, test_size=0.25, random_state=0, stratify=labels
    )
    pipeline = spec["pipeline"](**params).fit(x_train, y_train)
    predicted = pipeline.predict(x_test)
    metrics = {
        "accuracy": round(float(accuracy_score(y_test, predicted)), 4),
        "f1_macro": round(float(f1_score(y_test, predicted, average="macro")), 4),
        "train_rows": float(len(x_train)),
    }
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    mlflow.set_experiment(EXPERIMENT)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    with mlflow.start_run(run_name=f"{name} C={params.get('C')}") as run:
        mlflow.log_params({**params, "rows": len(features), "model": name})
        mlflow.log_metrics(metrics)
        log_reference_profile(x_train, predictions_frame(pipeline, x_train))
        signature = infer_signature(x_test.head(5), pipeline.predict_proba(x_test.head(5)))
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            signature=signature,
            input_example=x_test.head(2),
            pyfunc_predict_fn="predict_proba",
            registered_model_name=name,
            metadata={"classes": [str(label) for label in pipeline.classes_]},
            # Stated, not inferred: inference loads the model in a subprocess (slow).
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
        )
    return registered_version(
        client,
        name,
        info,
        run,
        metrics,
        description=spec["description"],
        thresholds=spec["thresholds"],
    )


def registered_version(
    client: Any,
    name: str,
    info: Any,
    run: Any,
    metrics: dict[str, float],
    *,
    description: str,
    thresholds: dict[str, float],
) -> TrainedVersion:
    """After ``log_model`` registered a version: tag it with its artifact checksum, and the
    model with its description and promotion thresholds."""
    import tempfile

    import mlflow

    version = str(info.registered_model_version)
    with tempfile.TemporaryDirectory() as scratch:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{version}", dst_path=scratch
        )
        sha256 = artifact_sha256(Path(local))
    client.set_model_version_tag(name, version, SHA256_TAG, sha256)
    client.update_registered_model(name, description=description)
    client.set_registered_model_tag(name, THRESHOLDS_TAG, json.dumps(thresholds))
    logger.info("registered %s version %s %s", name, version, metrics)
    return TrainedVersion(name, version, run.info.run_id, metrics, sha256)


def train_demo_models(
    *,
    tracking_uri: str,
    names: tuple[str, ...] = tuple(DEMO_MODELS),
    rows: int | None = None,
    owner: str = "",
    weak: bool = False,
) -> list[TrainedVersion]:
    """Register every version of each demo model that does not exist yet; the first version
    of a new model becomes ``production``; a model without an owner gets ``owner`` (a
    workspace slug). ``weak`` also registers one more version trained on shuffled labels
    (each time: a deliberately worse canary to try monitoring with). Returns the versions
    trained now."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    trained = []
    for name in names:
        try:
            existing = len(client.search_model_versions(f"name='{name}'"))
        except MlflowException:
            existing = 0
        train: Any = train_and_register
        if DEMO_MODELS[name].get("train") == "language":
            from .lm_training import train_and_register_language as train
        elif DEMO_MODELS[name].get("train") == "transformers":
            from .lm_training import train_and_register_transformers as train
        versions = [
            train(name, params=params, rows=rows, tracking_uri=tracking_uri)
            for params in DEMO_MODELS[name]["versions"][existing:]
        ]
        if None in versions:  # the trainer's environment is missing (logged): skipped
            continue
        trained.extend(versions)
        registered = client.get_registered_model(name)
        if not registered.aliases:
            client.set_registered_model_alias(name, "production", "1")
        if owner and not (registered.tags or {}).get(OWNER_TAG):
            client.set_registered_model_tag(name, OWNER_TAG, owner)
        if weak:
            params = DEMO_MODELS[name]["versions"][-1]
            trained.append(
                train_and_register(
                    name, params=params, rows=rows, tracking_uri=tracking_uri, shuffle_labels=True
                )
            )
    return trained


def registry_is_up(uri: str, *, timeout: float = 2.0) -> bool:
    import httpx

    try:
        return httpx.get(f"{uri.rstrip('/')}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False
