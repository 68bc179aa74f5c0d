"""Shared forward passes for a language model's concurrent decodes: the language-model
counterpart of ``/predict_rows``' adaptive batching.

Every decode (``apps/mlmodels/decoding.py``) asks its model one thing per step: the
next-token distribution of its text so far. ``SharedForwardPasses`` stands in front of one
model version with the same decoding interface; its ``distribution`` queues the question,
and the first decode to ask while no batch is being computed answers the queued questions
together, in its own thread, with one call of the model's ``distributions`` (the
transformers model: one padded forward pass). It gathers for at most
``FLOWGATE_LM_BATCH_WAIT_MS`` and at most ``FLOWGATE_LM_BATCH_SIZE`` questions, and does
not wait at all once every decode under way has asked (a request alone pays nothing).
``FLOWGATE_LM_BATCH_SIZE=1`` turns it off: each decode calls the model itself, as before.

The decoding code is the model's own (this is a ``TokenDecoder`` too), so guided
decoding, stop sequences, streaming and token counts are unchanged; only where a
distribution is computed moves.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from apps.mlmodels.decoding import TokenDecoder

BATCH_SIZE = int(os.environ.get("FLOWGATE_LM_BATCH_SIZE", "16"))
BATCH_WAIT_SECONDS = float(os.environ.get("FLOWGATE_LM_BATCH_WAIT_MS", "3")) / 1000


@dataclass(eq=False)
class _Question:
    history: str
    done: threading.Event = field(default_factory=threading.Event)
    answer: np.ndarray | None = None
    error: BaseException | None = None


class SharedForwardPasses(TokenDecoder):
    def __init__(
        self,
        model: TokenDecoder,
        *,
        batch_size: int = BATCH_SIZE,
        wait_seconds: float = BATCH_WAIT_SECONDS,
    ) -> None:
        self.model = model
        self.vocab, self.end = model.vocab, model.end
        self.context_length = model.context_length
        self.batch_size, self.wait_seconds = max(1, batch_size), max(0.0, wait_seconds)
        self._ready = threading.Condition()
        self._queued: list[_Question] = []
        self._decoding = 0  # decodes under way (``decoding``): who may still ask
        self.decode_steps = 0  # distributions asked for
        self.forward_passes = 0  # model calls that answered them
        self.largest_batch = 0
        self._leading = False  # a decode is gathering or computing a batch

    def tokens(self, text: str) -> list[tuple[int, str]]:
        return self.model.tokens(text)

    def count_tokens(self, text: str) -> int:
        return self.model.count_tokens(text)

    def counters(self) -> dict[str, Any]:
        with self._ready:
            return {
                "decode_steps": self.decode_steps,
                "forward_passes": self.forward_passes,
                "largest_batch": self.largest_batch,
                "batch_size": self.batch_size,
            }

    @contextmanager
    def decoding(self) -> Iterator[None]:
        """Around one request's decode: while it runs, a gathering batch waits for its
        next question (up to the wait window)."""
        with self._ready:
            self._decoding += 1
        try:
            yield
        finally:
            with self._ready:
                self._decoding -= 1
                self._ready.notify_all()

    def distribution(self, history: str) -> np.ndarray:
        if self.batch_size == 1:
            with self._ready:
                self.decode_steps += 1
                self.forward_passes += 1
                self.largest_batch = 1
            return self.model.distributions([history])[0]
        question = _Question(history)
        with self._ready:
            self._queued.append(question)
            self._ready.notify_all()
            # The first decode to ask while no batch is being computed computes the next
            # one itself (no hand-over to another thread: a request alone runs as before);
            # the others wait for their answer, or for their turn to lead.
            while not question.done.is_set() and self._leading:
                self._ready.wait()
            if not question.done.is_set():
                self._leading = True
                batch = self._gather(question)
        if not question.done.is_set():
            self._answer(batch)
        if question.error is not None:
            raise question.error
        assert question.answer is not None
        return question.answer

    def _gather(self, leader: _Question) -> list[_Question]:
        """The leader's batch (under the lock): its own question and the others queued,
        once every decode under way has asked, the batch is full or the wait window has
        passed."""
        deadline = time.monotonic() + self.wait_seconds
        while len(self._queued) < min(self.batch_size, max(self._decoding, 1)):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._ready.wait(left)
        others = [q for q in self._queued if q is not leader][: self.batch_size - 1]
        batch = [leader, *others]
        self._queued = [q for q in self._queued if q not in batch]
        self.decode_steps += len(batch)
        self.forward_passes += 1
        self.largest_batch = max(self.largest_batch, len(batch))
        return batch

    def _answer(self, batch: list[_Question]) -> None:
        try:
            answers = self.model.distributions([q.history for q in batch])
            for question, answer in zip(batch, answers, strict=True):
                question.answer = answer
        except BaseException as error:  # each decode reports it as its own failure
            for question in batch:
                question.error = error
        finally:
            with self._ready:
                for question in batch:
                    question.done.set()
                self._leading = False
                self._ready.notify_all()
