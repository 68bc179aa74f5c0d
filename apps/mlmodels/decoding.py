"""Decoding for every language model the model service hosts, written once over one
primitive: the next-token distribution.

A model gives ``vocab`` (the text of each token), ``end`` (the end-of-turn token),
``context_length``, ``tokens(text)`` and ``distribution(history)`` (P(next token | the
text so far)). Sampling, greedy decoding, stop sequences, choice scoring and
JSON-schema-guided decoding below need nothing else, so the toy character model
(``toy_lm.py``) and a transformers model (``workers/serving/transformers_lm.py``, in the
model service's own environment) decode the same way. numpy and the standard library only.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

GUIDED_STRING_MAX = 48
UNKNOWN = -1  # a piece of text no token covers (the toy model's unseen characters)


class PromptTooLong(ValueError):
    pass


class GuidedUnsupported(ValueError):
    pass


def _json_string_char(char: str) -> bool:
    return char.isprintable() and char not in '"\\'


class TokenDecoder(ABC):
    vocab: list[str]
    end: int
    context_length: int

    # -- what a model provides -----------------------------------------------------------

    @abstractmethod
    def distribution(self, history: str) -> np.ndarray:
        """P(next token | history), over ``vocab``."""

    def distributions(self, histories: list[str]) -> list[np.ndarray]:
        """``distribution`` of each history; a model that can compute several in one
        forward pass overrides it (the model service batches concurrent decodes through
        it: ``workers/serving/lm_batching.py``)."""
        return [self.distribution(history) for history in histories]

    @abstractmethod
    def tokens(self, text: str) -> list[tuple[int, str]]:
        """``text`` as (token, its text) pairs; ``UNKNOWN`` where no token covers a piece."""

    def count_tokens(self, text: str) -> int:
        return len(self.tokens(text))

    # -- shared --------------------------------------------------------------------------

    def check_prompt(self, prompt: str) -> None:
        count = self.count_tokens(prompt)
        if count > self.context_length:
            raise PromptTooLong(
                f"the prompt is {count} tokens; this model's context length is "
                f"{self.context_length}"
            )

    def logprob(self, prompt: str, continuation: str, *, end: bool = False) -> float:
        """log P(continuation | prompt), token by token (and the end token after it)."""
        total, history = 0.0, prompt
        pieces = self.tokens(continuation) + ([(self.end, "")] if end else [])
        for token, text in pieces:
            p = self.distribution(history)
            total += math.log(p[token]) if token != UNKNOWN else math.log(1e-9)
            history += text
        return total

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
            token = self._pick(self.distribution(history), temperature, rng)
            if token == self.end:
                break
            held += self.vocab[token]
            history += self.vocab[token]
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
        """The likeliest choice (mean log-probability per token, the end token included,
        so long choices are not penalised), and each choice's normalised probability."""
        self.check_prompt(prompt)
        scores = {
            c: self.logprob(prompt, c, end=True) / (self.count_tokens(c) + 1) for c in choices
        }
        top = max(scores.values())
        weights = {c: math.exp(s - top) for c, s in scores.items()}
        total = sum(weights.values())
        probabilities = {c: round(w / total, 6) for c, w in weights.items()}
        return max(scores, key=scores.__getitem__), probabilities

    def guided_json(self, prompt: str, schema: dict[str, Any], *, max_tokens: int) -> str:
        """JSON that matches ``schema`` by construction: the layout is fixed by the schema
        and the model fills each value, restricted to tokens the value's type allows.
        Supports an object of string (enum too), integer, number and boolean fields."""
        self.check_prompt(prompt)
        properties = _object_properties(schema)
        text = "{"
        for position, (name, spec) in enumerate(properties.items()):
            text += ("" if position == 0 else ", ") + json.dumps(name) + ": "
            text += self._guided_value(prompt + text, spec)
            if self.count_tokens(text) > max_tokens:
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
            digits = "0123456789".__contains__
            return self._restricted(history, digits, first="123456789", limit=6) or "0"
        if kind == "string":
            limit = min(int(spec.get("maxLength", GUIDED_STRING_MAX)), GUIDED_STRING_MAX)
            body = self._restricted(history + '"', _json_string_char, limit=limit, end='"')
            return json.dumps(body)
        raise GuidedUnsupported(f"guided decoding does not support a {kind!r} field")

    def _restricted(
        self,
        history: str,
        allowed: Callable[[str], bool],
        *,
        limit: int,
        first: str = "",
        end: str = "",
    ) -> str:
        """Greedy tokens made of ``allowed`` characters (the first starting with one of
        ``first``) until a token starting with ``end`` (or, without one, any other token) is
        likelier than every allowed one, or ``limit`` characters are written."""
        mask = np.array([bool(t) and all(allowed(c) for c in t) for t in self.vocab])
        opening = np.array([ok and t[0] in first for ok, t in zip(mask, self.vocab, strict=True)])
        closing = np.array([bool(end) and t.startswith(end) for t in self.vocab])
        out = ""
        while len(out) < limit:
            p = self.distribution(history + out)
            if out:
                stop_p = p[closing].max() if closing.any() else p[~mask].max()
                if stop_p >= p[mask].max():
                    break
            candidates = opening if (first and not out) else mask
            out += self.vocab[int(np.argmax(np.where(candidates, p, -1.0)))]
        return out[:limit]


def _object_properties(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
        raise GuidedUnsupported("guided decoding needs an object schema with properties")
    return dict(schema["properties"])
