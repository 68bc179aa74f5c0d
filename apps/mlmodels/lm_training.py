"""The demo language model ``support-writer``: trained here, registered in MLflow.

It is a toy (``toy_lm.py``): a character n-gram model trained in about a second on support
dialogues generated from the ticket-triage phrases. It is registered as an MLflow pyfunc
(numpy only) under the same aliases, owner tag, checksum and promotion gate as the other
demo models, with metrics the gate can judge: ``accuracy`` (how often it picks the right
urgency label among three, scored on held-out tickets) and ``bits_per_char``.

Its sibling ``support-writer-gpt`` is a small GPT-2-style model with the transformers
flavor, trained on the same dialogues by ``workers/serving/train_lm.py`` in the model
service's own environment (torch and transformers stay out of web and worker processes):
``train_and_register_transformers`` starts it there.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from .toy_lm import END, ToyLanguageModel, chat_prompt

logger = logging.getLogger(__name__)

LANGUAGE_KIND = "language"
# workers/serving/train_lm.py's exit status when its environment lacks torch or transformers.
MISSING_PACKAGES = 3
LABELS = ("urgent", "normal", "low")
CLASSIFY_QUESTION = "Classify the urgency of this ticket as urgent, normal or low: "
_REPLIES = {
    "urgent": (
        "We are sorry. This is our top priority and an engineer is on it now.",
        "Thank you for telling us at once. Our on-call team is fixing it right now.",
    ),
    "normal": (
        "Thanks for the report. We will look into it today and get back to you.",
        "Thank you. Our support team will answer within one business day.",
    ),
    "low": (
        "Thanks for the note. We have added it to our list.",
        "Thank you for the feedback. We will keep it in mind.",
    ),
}


def support_dialogues(rows: int = 500, seed: int = 5) -> list[tuple[str, str, str]]:
    """(label, ticket text, dialogue text) triples."""
    import numpy as np

    from .training import ticket_triage_data

    texts, labels = ticket_triage_data(rows=rows, seed=seed)
    rng = np.random.default_rng(seed)
    out = []
    for text, label in zip(texts["text"], labels, strict=True):
        label = str(label)
        reply = str(rng.choice(_REPLIES[label]))
        record = json.dumps({"urgency": label, "summary": text})
        turns = [
            ([{"role": "user", "content": text}], reply),
            ([{"role": "user", "content": CLASSIFY_QUESTION + text}], label),
            ([{"role": "user", "content": f"Extract the urgency and a summary: {text}"}], record),
        ]
        dialogue = "".join(f"{chat_prompt(m)}{answer}{END}\n" for m, answer in turns)
        out.append((label, text, dialogue))
    return out


def evaluate(model: ToyLanguageModel, held_out: list[tuple[str, str, str]]) -> dict[str, float]:
    right, bits, chars = 0, 0.0, 0
    for label, text, dialogue in held_out:
        prompt = chat_prompt([{"role": "user", "content": CLASSIFY_QUESTION + text}])
        right += model.choose(prompt, list(LABELS))[0] == label
        bits -= model.logprob("", dialogue[:200]) / math.log(2)
        chars += len(dialogue[:200])
    return {
        "accuracy": round(right / len(held_out), 4),
        "bits_per_char": round(bits / chars, 4),
    }


def train_and_register_transformers(
    name: str, *, params: dict[str, Any], rows: int | None = None, tracking_uri: str
) -> Any:
    """Train and register the GPT-2-style model in the model service's environment (a
    subprocess: ``workers/serving/train_lm.py``); a seconds-long job on the CPU. None, with
    a warning, where that environment lacks torch or transformers (scripts/bootstrap.sh
    was not run, or a plain image)."""
    import os
    import subprocess

    from studio.processes import OFFLINE, REPOSITORY_ROOT, models_python

    from .training import TrainedVersion

    command = [
        models_python(),
        "-m",
        "workers.serving.train_lm",
        "--tracking-uri",
        tracking_uri,
        "--name",
        name,
        "--params",
        json.dumps(params),
    ]
    if rows:
        command += ["--rows", str(rows)]
    done = subprocess.run(
        command,
        cwd=REPOSITORY_ROOT,
        env={**os.environ, **OFFLINE},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode == MISSING_PACKAGES:
        logger.warning("%s not trained: %s", name, done.stderr.strip())
        return None
    if done.returncode != 0:
        raise RuntimeError(
            f"training {name} in the model service's environment failed "
            f"(scripts/bootstrap.sh installs it): {done.stderr.strip()[-2000:]}"
        )
    last = [line for line in done.stdout.splitlines() if line.startswith("{")][-1]
    return TrainedVersion(**json.loads(last))


def _python_model_class() -> Any:
    import mlflow.pyfunc

    base: Any = mlflow.pyfunc.PythonModel

    class ToyLanguagePyfunc(base):
        """``predict`` continues each prompt greedily (what a plain pyfunc caller gets);
        the model service uses ``lm`` directly for chat, streaming and guided decoding."""

        def load_context(self, context: Any) -> None:
            self.lm = ToyLanguageModel.loads(Path(context.artifacts["weights"]).read_text())

        # Untyped on purpose: MLflow reads type hints here as a (wrong) signature.
        def predict(self, context, model_input, params=None):
            prompts = list(model_input["prompt"])
            return ["".join(p for p, _ in self.lm.stream(q, max_tokens=200)) for q in prompts]

    return ToyLanguagePyfunc


def train_and_register_language(
    name: str, *, params: dict[str, Any], rows: int | None = None, tracking_uri: str
) -> Any:
    import tempfile

    import mlflow
    import numpy
    from mlflow import MlflowClient
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    from .training import EXPERIMENT, registered_version

    dialogues = support_dialogues(rows=rows or 500)
    split = int(len(dialogues) * 0.8)
    model = ToyLanguageModel.train("".join(d for _, _, d in dialogues[:split]), params["order"])
    metrics = {**evaluate(model, dialogues[split:]), "train_rows": float(split)}
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    mlflow.set_experiment(EXPERIMENT)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    signature = ModelSignature(
        inputs=Schema([ColSpec("string", "prompt")]), outputs=Schema([ColSpec("string")])
    )
    with (
        tempfile.TemporaryDirectory() as scratch,
        mlflow.start_run(run_name=f"{name} order={params['order']}") as run,
    ):
        weights = Path(scratch) / "weights.json"
        weights.write_text(model.dumps())
        mlflow.log_params({**params, "rows": len(dialogues), "model": name})
        mlflow.log_metrics(metrics)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=_python_model_class()(),
            artifacts={"weights": str(weights)},
            signature=signature,
            registered_model_name=name,
            metadata={"flowgate_kind": LANGUAGE_KIND, "context_length": model.context_length},
            pip_requirements=[f"numpy=={numpy.__version__}"],
        )
    return registered_version(
        client,
        name,
        info,
        run,
        metrics,
        description="Support reply writer (toy character language model).",
        thresholds={"accuracy": 0.3},
    )
