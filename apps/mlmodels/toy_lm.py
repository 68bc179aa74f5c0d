"""A toy character-level language model: numpy and the standard library only.

It exists so the real serving path (MLflow registry → BentoML → OpenAI-compatible API →
``ai.*`` blocks) runs in tests and in the demo without downloading weights and without
torch (whose PyPI wheels pull several GB of CUDA libraries). It is an interpolated
character n-gram model trained in about a second on text the project generates: it writes
support-desk-flavoured sentences, nothing more. Real models are registered in MLflow the
same way (see the README, "AI blocks").

Tokens are characters, so token counts and the context length are counted in characters.
The model gives a next-token distribution, which is all that sampling, greedy decoding,
stop sequences, choice scoring and JSON-schema-guided decoding need (``decoding.py``,
shared with the transformers models the service hosts).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from .decoding import UNKNOWN, TokenDecoder

END = "\x03"  # end of a turn (the model emits it when its answer is complete)
CONTEXT_LENGTH = 2048
ORDER = 6  # the longest context is ORDER - 1 characters


def chat_prompt(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> str:
    """The text the model continues: one ``role: content`` line per message, then
    ``assistant:`` (the layout of the training dialogues). An assistant turn that called
    tools reads ``call <name> <arguments>``; tools offered come first, as a system line."""
    lines = [f"{m.get('role', 'user')}: {_content(m)}" for m in messages]
    if tools:
        offered = ", ".join(f"{t['name']} ({t.get('description', '')})" for t in tools)
        lines.insert(0, f"system: tools: {offered}")
    return "\n".join([*lines, "assistant: "])


def _content(message: dict[str, Any]) -> str:
    text = message.get("content") or ""
    calls = [
        f"call {call['function']['name']} {call['function'].get('arguments') or '{}'}"
        for call in message.get("tool_calls") or ()
    ]
    return "; ".join([text] * bool(text) + calls)


class ToyLanguageModel(TokenDecoder):
    def __init__(self, vocab: list[str], tables: list[dict[str, dict[str, int]]]) -> None:
        self.vocab = vocab
        self.index = {char: i for i, char in enumerate(vocab)}
        self.end = self.index[END]
        self.tables = tables
        self.context_length = CONTEXT_LENGTH
        self._vectors: dict[tuple[int, str], np.ndarray | None] = {}

    # -- training and storage ------------------------------------------------------------

    @classmethod
    def train(cls, text: str, order: int = ORDER) -> ToyLanguageModel:
        vocab = sorted(set(text) | {END})
        tables: list[dict[str, dict[str, int]]] = [{} for _ in range(order)]
        for position, char in enumerate(text):
            for k in range(order):
                if position - k < 0:
                    break
                context = text[position - k : position]
                row = tables[k].setdefault(context, {})
                row[char] = row.get(char, 0) + 1
        return cls(vocab, tables)

    def dumps(self) -> str:
        return json.dumps({"vocab": self.vocab, "tables": self.tables})

    @classmethod
    def loads(cls, text: str) -> ToyLanguageModel:
        data = json.loads(text)
        return cls(list(data["vocab"]), list(data["tables"]))

    # -- the distribution ----------------------------------------------------------------

    def tokens(self, text: str) -> list[tuple[int, str]]:
        return [(self.index.get(char, UNKNOWN), char) for char in text]

    def count_tokens(self, text: str) -> int:
        return len(text)

    def _vector(self, k: int, context: str) -> np.ndarray | None:
        key = (k, context)
        if key not in self._vectors:
            row = self.tables[k].get(context)
            vector = None
            if row:
                vector = np.zeros(len(self.vocab))
                for char, count in row.items():
                    vector[self.index[char]] = count
                vector /= vector.sum()
            self._vectors[key] = vector
        return self._vectors[key]

    def distribution(self, history: str) -> np.ndarray:
        """P(next char | history): orders with a seen context, longer ones weighted more,
        plus a small uniform floor so no character is impossible."""
        mixed = np.full(len(self.vocab), 1e-6)
        for k in range(len(self.tables)):
            if k > len(history):
                break
            vector = self._vector(k, history[len(history) - k :] if k else "")
            if vector is not None:
                mixed += (4.0**k) * vector
        return mixed / mixed.sum()
