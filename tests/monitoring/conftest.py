"""A model of its own for the monitoring tests (so the shared ``claim-fraud`` versions stay
as other tests expect): version 1 trained properly, version 2 deliberately weak (trained
on shuffled labels), both with the training reference profile logged to their runs."""

from __future__ import annotations

import uuid

import pytest

from apps.mlmodels.blocks import ModelPredictBlock, ModelPredictConfig, ModelServiceClient
from apps.mlmodels.training import CLAIM_FRAUD, claim_fraud_data, train_and_register
from apps.monitoring.sampling import PredictionRecorder
from tests.blocks.fakes import FakeContext

MONITORED = "claim-fraud-monitored"
FIELDS = ("amount", "claimant_age", "days_since_policy_start", "prior_claims", "channel")


@pytest.fixture(scope="session")
def monitored_versions(model_stack):
    url = model_stack.mlflow.url
    strong = train_and_register(
        CLAIM_FRAUD, params={"C": 1.0}, rows=600, tracking_uri=url, registered_name=MONITORED
    )
    weak = train_and_register(
        CLAIM_FRAUD,
        params={"C": 1.0},
        rows=600,
        tracking_uri=url,
        registered_name=MONITORED,
        shuffle_labels=True,
    )
    return strong, weak


def stream(rows: int, seed: int, *, shift_from: int | None = None):
    """Claims from the training distribution; from row ``shift_from`` on, amounts triple
    and every claim comes through the web (the shift a drift test must catch)."""
    features, labels = claim_fraud_data(rows=rows, seed=seed)
    records = features.to_dict("records")
    if shift_from is not None:
        for record in records[shift_from:]:
            record["amount"] = round(record["amount"] * 3 + 5000, 2)
            record["channel"] = "web"
    return records, [str(label) for label in labels]


def predict(service_url: str, workspace_id, claim: dict, *, run_id: str | None = None):
    """One model.predict step as the engine runs it: the real block, the real model
    service and the real monitoring recorder (Postgres)."""
    run_id = run_id or str(uuid.uuid4())
    context = FakeContext(
        scope={"trigger": {"body": claim}},
        services={
            "models": ModelServiceClient(str(workspace_id), base_url=service_url),
            "monitoring": PredictionRecorder(str(workspace_id)),
        },
        run_id=run_id,
        node_id="score",
        workspace_id=str(workspace_id),
    )
    config = ModelPredictConfig(
        model=MONITORED,
        inputs={name: f"trigger.body.{name}" for name in FIELDS},
        business_key="trigger.body.claim_number",
    )
    return run_id, ModelPredictBlock().execute(context, config, None)


def register_sklearn_version(model_stack, model, signature) -> str:
    """Log ``model`` (predicting with ``predict_proba``) as a new version of the monitored
    model; returns the version."""
    import mlflow
    import mlflow.sklearn
    import sklearn

    mlflow.set_tracking_uri(model_stack.mlflow.url)
    mlflow.set_registry_uri(model_stack.mlflow.url)
    mlflow.set_experiment("flowgate-tests")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=signature,
            registered_model_name=MONITORED,
            pyfunc_predict_fn="predict_proba",
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
        )
    return str(info.registered_model_version)


@pytest.fixture(scope="session")
def narrow_version(model_stack, monitored_versions) -> str:
    """A version of the monitored model whose signature lacks ``channel``: the service
    refuses every call the flows make to it (an incompatible canary)."""
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    features, labels = claim_fraud_data(rows=300, seed=7)
    numeric = features.drop(columns=["channel"])
    model = LogisticRegression().fit(numeric, labels)
    signature = infer_signature(numeric.head(5), model.predict_proba(numeric.head(5)))
    return register_sklearn_version(model_stack, model, signature)


@pytest.fixture(scope="session")
def crashing_version(model_stack, monitored_versions) -> str:
    """A version of the monitored model that crashes on every call the flows make: its
    one-hot encoder saw only the channel ``legacy`` in training and refuses any other (a
    model failing inside the service, not an input the signature refuses)."""
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    features, labels = claim_fraud_data(rows=300, seed=8)
    signature = infer_signature(features.head(5), [[0.5, 0.5]] * 5)
    trained = features.assign(channel="legacy")
    encode = ColumnTransformer(
        [("channel", OneHotEncoder(handle_unknown="error"), ["channel"])], remainder="passthrough"
    )
    model = make_pipeline(encode, LogisticRegression(max_iter=1000)).fit(trained, labels)
    return register_sklearn_version(model_stack, model, signature)


def scoring_flow(*, review: bool = True) -> dict:
    """A manual trigger scoring the claim with the monitored model; with ``review``,
    low-confidence claims go to a reviewer."""
    from tests.runs.helpers import definition, node

    score = node(
        "score",
        "model.predict",
        model=MONITORED,
        inputs={name: f"trigger.body.{name}" for name in FIELDS},
        business_key="trigger.body.claim_number",
        **({"threshold": 0.9} if review else {}),
    )
    if not review:
        return definition([node("start", "trigger.manual"), score], [("start", "score")])
    return definition(
        [
            node("start", "trigger.manual"),
            score,
            node("review", "human.approval", title="Check the claim"),
            node("done", "transform.set", values={"automated": "true"}),
        ],
        [("start", "score"), ("score", "done", "out"), ("score", "review", "low_confidence")],
        name="Claim scoring",
    )


def start_claims(flow, records, *, prefix: str, actor=None, advance_each: bool = True) -> list:
    """A run of ``flow`` per claim (business key ``<prefix>-<n>``), each advanced at once
    unless ``advance_each`` is false; returns the runs."""
    from apps.runs.blocks import envelope
    from apps.runs.engine import advance
    from apps.runs.services import run_start

    runs = []
    for number, record in enumerate(records):
        run = run_start(
            flow=flow,
            trigger="manual",
            payload=envelope({**record, "claim_number": f"{prefix}-{number}"}),
            actor=actor,
            enqueue=False,
        ).run
        if advance_each:
            advance(run.id)
        runs.append(run)
    return runs
