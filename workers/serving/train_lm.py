"""Train the demo's small GPT-2-style language model and register it in MLflow with the
transformers flavor. Runs in the model service's environment (torch, transformers):

    .venv-models/bin/python -m workers.serving.train_lm --tracking-uri URI --name NAME \\
        --params '{"layers": 2, ...}' [--rows N]

prints the registered version as one JSON line (``manage.py models train_demo`` starts it
this way: ``apps/mlmodels/lm_training.py``). Nothing is downloaded: a byte-level BPE
tokenizer is trained with the ``tokenizers`` library and the model starts from random
weights, both on the support dialogues the project generates for the toy model, and trains
for a few hundred steps on the CPU (seconds). It is a toy too: it writes support-desk-like
sentences, nothing more.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from typing import Any

for _name, _value in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}.items():
    os.environ.setdefault(_name, _value)

try:
    import torch
    import transformers  # noqa: F401
except ImportError as missing:
    sys.stderr.write(f"{missing}: run scripts/bootstrap.sh (it installs .venv-models)\n")
    sys.exit(3)  # lm_training.MISSING_PACKAGES: the caller skips the model

import numpy as np  # noqa: E402

from apps.mlmodels.lm_training import (  # noqa: E402
    CLASSIFY_QUESTION,
    LABELS,
    LANGUAGE_KIND,
    support_dialogues,
)
from apps.mlmodels.toy_lm import END, chat_prompt  # noqa: E402
from workers.serving.transformers_lm import TransformersLanguageModel  # noqa: E402

# Words, and each whitespace, punctuation character and digit on its own: merges never
# cross a word boundary, so the text so far tokenizes the same whatever comes next (the
# prompt's trailing space too), and guided numbers are written digit by digit.
PRE_TOKENIZE = r"\s|[^\w\s]|\d"
DEFAULTS = {
    "vocab": 512,
    "layers": 2,
    "heads": 2,
    "embedding": 64,
    "context": 256,
    "block": 128,
    "batch": 8,
    "steps": 300,
    "learning_rate": 0.003,
}


def build_tokenizer(texts: list[str], vocab_size: int) -> Any:
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRE_TOKENIZE), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[END],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer)
    # END closes every answer in the dialogues: the model's end-of-sequence token.
    return PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token=END, bos_token=END, pad_token=END
    )


def train_model(ids: list[int], tokenizer: Any, params: dict[str, Any]) -> Any:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    # One thread: for matrices this small, more threads cost more CPU than they save.
    torch.set_num_threads(1)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=params["context"],
        n_embd=params["embedding"],
        n_layer=params["layers"],
        n_head=params["heads"],
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = GPT2LMHeadModel(config)
    stream = torch.tensor(ids)
    block, batch = params["block"], params["batch"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=params["learning_rate"])
    # Linear decay to zero: a small model trained briefly settles better than at a flat rate.
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 1.0 - step / params["steps"]
    )
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(params["steps"]):
        starts = torch.randint(0, len(stream) - block - 1, (batch,), generator=generator)
        windows = torch.stack([stream[s : s + block + 1] for s in starts.tolist()])
        loss = model(windows[:, :-1], labels=windows[:, :-1]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    return model.eval()


def evaluate(lm: TransformersLanguageModel, held_out: list[tuple[str, str, str]]) -> dict:
    """``accuracy``: how often it picks the right urgency label among three (the metric
    the promotion gate reads, as for the toy); ``bits_per_char`` on the held-out text."""
    right, bits, chars = 0, 0.0, 0
    for label, text, dialogue in held_out:
        prompt = chat_prompt([{"role": "user", "content": CLASSIFY_QUESTION + text}])
        right += lm.choose(prompt, list(LABELS))[0] == label
        ids = [lm.end, *lm.backend.encode(dialogue, add_special_tokens=False).ids]
        ids = ids[: lm.context_length]
        with torch.inference_mode():
            logits = lm.model(torch.tensor([ids[:-1]])).logits[0]
        logp = torch.log_softmax(logits.double(), dim=-1)
        bits -= float(logp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].sum()) / math.log(2)
        chars += len(lm.backend.decode(ids[1:], skip_special_tokens=False))
    return {
        "accuracy": round(right / len(held_out), 4),
        "bits_per_char": round(bits / chars, 4),
    }


def train_and_register(
    name: str, *, params: dict[str, Any], rows: int | None, tracking_uri: str
) -> Any:
    import mlflow
    import tokenizers
    import transformers
    from huggingface_hub import ModelCard
    from mlflow import MlflowClient
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    from apps.mlmodels.training import EXPERIMENT, registered_version

    params = {**DEFAULTS, **params}
    dialogues = support_dialogues(rows=rows or 500)
    split = int(len(dialogues) * 0.9)
    texts = [d for _, _, d in dialogues[:split]]
    tokenizer = build_tokenizer(texts, params["vocab"])
    ids = tokenizer.backend_tokenizer.encode("".join(texts), add_special_tokens=False).ids
    model = train_model(list(ids), tokenizer, params)
    lm = TransformersLanguageModel(model, tokenizer)
    metrics = {**evaluate(lm, dialogues[split:][:30]), "train_rows": float(split)}
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    mlflow.set_experiment(EXPERIMENT)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    card = ModelCard("A toy GPT-2-style model trained by Flowgate on generated support dialogues.")
    with mlflow.start_run(run_name=f"{name} layers={params['layers']}") as run:
        mlflow.log_params({**params, "rows": len(dialogues), "model": name})
        mlflow.log_metrics(metrics)
        info = mlflow.transformers.log_model(
            transformers_model={"model": model, "tokenizer": tokenizer},
            name="model",
            task="text-generation",
            signature=ModelSignature(
                inputs=Schema([ColSpec("string")]), outputs=Schema([ColSpec("string")])
            ),
            registered_model_name=name,
            metadata={"flowgate_kind": LANGUAGE_KIND, "context_length": params["context"]},
            model_card=card,
            # Stated, not inferred (inference would load the model in a subprocess).
            pip_requirements=[
                f"torch=={torch.__version__.split('+')[0]}",
                f"transformers=={transformers.__version__}",
                f"tokenizers=={tokenizers.__version__}",
                f"numpy=={np.__version__}",
            ],
        )
    return registered_version(
        client,
        name,
        info,
        run,
        metrics,
        description="Support reply writer (toy GPT-2-style model, transformers flavor).",
        thresholds={"accuracy": 0.3},
    )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--params", default="{}", help="JSON: overrides of DEFAULTS")
    parser.add_argument("--rows", type=int, default=None)
    options = parser.parse_args(argv)
    trained = train_and_register(
        options.name,
        params=json.loads(options.params),
        rows=options.rows,
        tracking_uri=options.tracking_uri,
    )
    print(json.dumps(dataclasses.asdict(trained)))


if __name__ == "__main__":
    main(sys.argv[1:])
