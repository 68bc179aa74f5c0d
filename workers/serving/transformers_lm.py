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
serves on CPU, a cost for large ones. ``distributions`` computes several histories in one
forward pass (left-padded, with an attention mask and matching positions), which is how
the service shares passes between concurrent decodes (``lm_batching.py``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
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
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()

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
        return self.distributions([history])[0]

    def distributions(self, histories: list[str]) -> list[np.ndarray]:
        with self._cache_lock:
            found = {h: self._cache[h] for h in histories if h in self._cache}
            for history in found:
                self._cache.move_to_end(history)
        missing = list(dict.fromkeys(h for h in histories if h not in found))
        if missing:
            computed = dict(zip(missing, self._forward(missing), strict=True))
            with self._cache_lock:
                self._cache.update(computed)
                while len(self._cache) > CACHED_DISTRIBUTIONS:
                    self._cache.popitem(last=False)
            found.update(computed)
        return [found[history] for history in histories]

    def _forward(self, histories: list[str]) -> list[np.ndarray]:
        """One forward pass over the histories, left-padded to the longest: the last
        position of each row is its next-token distribution. Positions count from each
        row's first real token, so a padded row is computed as it would be alone."""
        rows = [self._ids(history)[-self.context_length :] or [self.end] for history in histories]
        width = max(len(row) for row in rows)
        ids = torch.full((len(rows), width), self.end, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for index, row in enumerate(rows):
            ids[index, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[index, width - len(row) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            logits = self.model(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                position_ids=positions.to(self.device),
            ).logits[:, -1]
        # A floor, so that a log-probability is never log(0).
        probabilities = torch.softmax(logits.double(), dim=-1).cpu().numpy()
        return list(np.clip(probabilities, 1e-12, None))
