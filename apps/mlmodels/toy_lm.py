"""A toy character-level language model: numpy and the standard library only.

It exists so the real serving path (MLflow registry → BentoML → OpenAI-compatible API →
``ai.*`` blocks) runs in tests and in the demo without downloading weights and without
torch (whose PyPI wheels pull several GB of CUDA libraries). It is an interpolated
character n-gram model trained in about a second on text the project generates: it writes
support-desk-flavoured sentences, nothing more. Real models are registered in MLflow the
same way (see the README, "AI blocks").

Tokens are characters, so token counts and the context length are counted in characters.
The model gives a next-token distribution, which is all that sampling, greedy decoding,
stop sequences, choice scoring and JSON-schema-guided decoding need.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

END = "\x03"  # end of a turn (the model emits it when its answer is complete)
CONTEXT_LENGTH = 2048
ORDER = 6  # the longest context is ORDER - 1 characters
GUIDED_STRING_MAX = 48


class PromptTooLong(ValueError):
    pass


class GuidedUnsupported(ValueError):
    pass


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


class ToyLanguageModel:
    def __init__(self, vocab: list[str], tables: list[dict[str, dict[str, int]]]) -> None:
        self.vocab = vocab
        self.index = {char: i for i, char in enumerate(vocab)}
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

    def count_tokens(self, text: str) -> int:
        return len(text)

    def check_prompt(self, prompt: str) -> None:
        if self.count_tokens(prompt) > self.context_length:
            raise PromptTooLong(
                f"the prompt is {self.count_tokens(prompt)} tokens; this model's context "
                f"length is {self.context_length}"
            )

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

    def logprob(self, prompt: str, continuation: str) -> float:
        total, history = 0.0, prompt
        for char in continuation:
            p = self.distribution(history)
            total += math.log(p[self.index[char]]) if char in self.index else math.log(1e-9)
            history += char
        return total

    # -- decoding ------------------------------------------------------------------------

    def _pick(self, p: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
        if temperature <= 0:
            return int(np.argmax(p))
        logits = np.log(p) / temperature
        weights = np.exp(logits - logits.max())
        return int(rng.choice(len(p), p=weights / weights.sum()))

    def stream(
        self,
        prompt: str,
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: list[str] | None = None,
        seed: int = 0,
    ) -> Iterator[tuple[str, str | None]]:
        """Yield (text piece, finish_reason); the last item has ``stop`` or ``length``.
        Text up to a stop sequence is emitted; the stop sequence itself is not."""
        self.check_prompt(prompt)
        rng = np.random.default_rng(seed)
        stops = [s for s in (stop or []) if s]
        held, history = "", prompt
        for _ in range(max_tokens):
            char = self.vocab[self._pick(self.distribution(history), temperature, rng)]
            if char == END:
                break
            held += char
            history += char
            hit = next((s for s in stops if s in held), None)
            if hit:
                yield held[: held.index(hit)], "stop"
                return
            # Hold back what could still begin a stop sequence.
            keep = max((len(s) - 1 for s in stops), default=0)
            if len(held) > keep:
                cut = len(held) - keep
                yield held[:cut], None
                held = held[cut:]
        else:
            yield held, "length"
            return
        yield held, "stop"

    def choose(self, prompt: str, choices: list[str]) -> tuple[str, dict[str, float]]:
        """The likeliest choice (mean log-probability per character, so long choices are
        not penalised), and each choice's normalised probability."""
        self.check_prompt(prompt)
        scores = {c: self.logprob(prompt, c + END) / (len(c) + 1) for c in choices}
        top = max(scores.values())
        weights = {c: math.exp(s - top) for c, s in scores.items()}
        total = sum(weights.values())
        probabilities = {c: round(w / total, 6) for c, w in weights.items()}
        return max(scores, key=scores.__getitem__), probabilities

    def guided_json(self, prompt: str, schema: dict[str, Any], *, max_tokens: int) -> str:
        """JSON that matches ``schema`` by construction: the layout is fixed by the schema
        and the model fills each value, restricted to characters the value's type allows.
        Supports an object of string (enum too), integer, number and boolean fields."""
        self.check_prompt(prompt)
        properties = _object_properties(schema)
        text = "{"
        for position, (name, spec) in enumerate(properties.items()):
            text += ("" if position == 0 else ", ") + json.dumps(name) + ": "
            text += self._guided_value(prompt + text, spec)
            if len(text) > max_tokens:
                raise GuidedUnsupported(
                    f"the JSON answer needs more than max_tokens={max_tokens} tokens"
                )
        return text + "}"

    def _guided_value(self, history: str, spec: dict[str, Any]) -> str:
        kind = spec.get("type")
        if "enum" in spec:
            options = [json.dumps(value) for value in spec["enum"]]
            return self.choose(history, options)[0]
        if kind == "boolean":
            return self.choose(history, ["true", "false"])[0]
        if kind in ("integer", "number"):
            return self._restricted(history, "0123456789", first="123456789", limit=6) or "0"
        if kind == "string":
            allowed = "".join(c for c in self.vocab if c.isprintable() and c not in '"\\')
            limit = min(int(spec.get("maxLength", GUIDED_STRING_MAX)), GUIDED_STRING_MAX)
            body = self._restricted(history + '"', allowed, limit=limit, end='"')
            return json.dumps(body)
        raise GuidedUnsupported(f"guided decoding does not support a {kind!r} field")

    def _restricted(
        self, history: str, allowed: str, *, limit: int, first: str = "", end: str = ""
    ) -> str:
        """Greedy characters from ``allowed`` until ``end`` (or, without one, any other
        character) is likelier than every allowed one, or ``limit`` is reached."""
        mask = np.array([c in allowed for c in self.vocab])
        out = ""
        while len(out) < limit:
            p = self.distribution(history + out)
            if out or not first:
                stop_p = p[self.index[end]] if end in self.index else p[~mask].max()
                if out and stop_p >= p[mask].max():
                    break
            candidates = mask if (out or not first) else np.array([c in first for c in self.vocab])
            out += self.vocab[int(np.argmax(np.where(candidates, p, -1.0)))]
        return out


def _object_properties(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
        raise GuidedUnsupported("guided decoding needs an object schema with properties")
    return dict(schema["properties"])
