"""A transformers causal language model behind the decoding interface the toy model has
(``apps/mlmodels/decoding.py``): its next-token distribution, so streaming, stop
sequences, guided choice and guided JSON decode it with the same code.

Only the model service imports this, in its own environment (torch, transformers:
``workers/serving/requirements.txt``, installed into ``.venv-models`` by
``scripts/bootstrap.sh``); web and worker processes never do.

History is text: each step tokenizes the text so far (the fast Rust tokenizer, microseconds)
and runs the model on its last ``context_length`` tokens, so a continuation is tokenized
the way the model saw text in training. Distributions are cached by text, which is what
choice scoring and guided JSON reuse. No key-value cache: fine for the small models this
serves on CPU, a cost for large ones.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch

from apps.mlmodels.decoding import TokenDecoder

CACHED_DISTRIBUTIONS = 2048


class TransformersLanguageModel(TokenDecoder):
    def __init__(self, model: Any, tokenizer: Any, *, context_length: int = 0) -> None:
        self.model = model.eval()
        # The fast tokenizer's Rust core: encode and decode without special-token clean-up.
        self.backend = tokenizer.backend_tokenizer
        size = int(model.config.vocab_size)
        # A token's text. A token that is part of a multi-byte character decodes to "\ufffd"
        # on its own; the demo's models are trained on ASCII text.
        self.vocab = [self.backend.decode([i], skip_special_tokens=False) for i in range(size)]
        if tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has no end-of-sequence token")
        self.end = int(tokenizer.eos_token_id)
        config = model.config
        positions = getattr(config, "n_positions", 0) or getattr(
            config, "max_position_embeddings", 0
        )
        self.context_length = context_length or int(positions)
        self.device = next(model.parameters()).device
        self._cached = functools.lru_cache(maxsize=CACHED_DISTRIBUTIONS)(self._distribution)

    @classmethod
    def from_pipeline(cls, pipeline: Any, metadata: dict[str, Any]) -> TransformersLanguageModel:
        """From the text-generation pipeline MLflow's transformers flavor loads."""
        return cls(
            pipeline.model,
            pipeline.tokenizer,
            context_length=int(metadata.get("context_length") or 0),
        )

    def _ids(self, text: str) -> list[int]:
        return list(self.backend.encode(text, add_special_tokens=False).ids)

    def tokens(self, text: str) -> list[tuple[int, str]]:
        return [(token, self.vocab[token]) for token in self._ids(text)]

    def count_tokens(self, text: str) -> int:
        return len(self._ids(text))

    def distribution(self, history: str) -> np.ndarray:
        return self._cached(history)

    def _distribution(self, history: str) -> np.ndarray:
        ids = self._ids(history)[-self.context_length :] or [self.end]
        with torch.inference_mode():
            logits = self.model(torch.tensor([ids], device=self.device)).logits[0, -1]
        # A floor, so that a log-probability is never log(0).
        return np.clip(torch.softmax(logits.double(), dim=-1).cpu().numpy(), 1e-12, None)
