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


@pytest.fixture(scope="session")
def narrow_version(model_stack, monitored_versions) -> str:
    """A version of the monitored model whose signature lacks ``channel``: the service
    refuses every call the flows make to it (an incompatible canary)."""
    import mlflow
    import mlflow.sklearn
    import sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    features, labels = claim_fraud_data(rows=300, seed=7)
    numeric = features.drop(columns=["channel"])
    model = LogisticRegression().fit(numeric, labels)
    mlflow.set_tracking_uri(model_stack.mlflow.url)
    mlflow.set_registry_uri(model_stack.mlflow.url)
    mlflow.set_experiment("flowgate-tests")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(numeric.head(5), model.predict_proba(numeric.head(5))),
            registered_model_name=MONITORED,
            pyfunc_predict_fn="predict_proba",
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
        )
    return str(info.registered_model_version)


@pytest.fixture(scope="session")
def crashing_version(model_stack, monitored_versions) -> str:
    """A version of the monitored model that crashes on every call the flows make: its
    one-hot encoder saw only the channel ``legacy`` in training and refuses any other (a
    model failing inside the service, not an input the signature refuses)."""
    import mlflow
    import mlflow.sklearn
    import sklearn
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
