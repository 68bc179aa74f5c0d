"""Sync webhooks: the caller's request waits for its run's end, and no worker waits with it.

A flow whose blocks may wait (for-each, sub-flow, approval, delay) runs on the workers.
The web request subscribes to the run's live events (the Channels group ``run.<id>``,
Redis pub/sub) *before* handing the run over, so it cannot miss the end, then sleeps on
that subscription until the run ends, parks on a person, or the trigger's timeout passes.
Live events are best effort: the run's row is read again on every event and at least
once a second, so a lost event costs at most a second.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer

from apps.core.events import run_group

from .models import TERMINAL_RUN_STATUSES, Run, RunStatus, StepRun, StepStatus
from .tasks import enqueue_advance

# Waits that end only when a person acts: a sync caller is answered 202 at once.
HUMAN_WAIT_KINDS = frozenset({"approval"})
# How often the row is read again when no event arrives.
RECHECK_SECONDS = 1.0


def run_handover_and_wait(run: Run, *, timeout: float) -> Run:
    """Give ``run`` (created, not yet enqueued, committed) to the workers and return it as
    it stands once it has ended, parked on a person, or ``timeout`` seconds have passed."""
    return async_to_sync(_handover_and_wait)(run, timeout)


def run_settled(run: Run) -> bool:
    """Whether a sync caller has nothing more to wait for: the run ended, or it waits on
    a person."""
    if run.status in TERMINAL_RUN_STATUSES:
        return True
    return (
        run.status == RunStatus.WAITING
        and StepRun.objects.filter(
            run_id=run.pk, status=StepStatus.WAITING, wait_kind__in=HUMAN_WAIT_KINDS
        ).exists()
    )


async def _handover_and_wait(run: Run, timeout: float) -> Run:
    layer = get_channel_layer()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    channel = await layer.new_channel() if layer is not None else None
    if channel is not None:
        await layer.group_add(run_group(run.pk), channel)
    try:
        await sync_to_async(enqueue_advance)(run.pk, run.trace_context)
        while True:
            current, settled = await sync_to_async(_reread)(run)
            remaining = deadline - loop.time()
            if settled or remaining <= 0:
                return current
            await _next_event(layer, channel, min(remaining, RECHECK_SECONDS))
    finally:
        if channel is not None:
            await layer.group_discard(run_group(run.pk), channel)


def _reread(run: Run) -> tuple[Run, bool]:
    current = Run.objects.filter(pk=run.pk).first()
    if current is None:  # deleted meanwhile (retention): nothing left to wait for
        return run, True
    return current, run_settled(current)


async def _next_event(layer: Any, channel: str | None, seconds: float) -> None:
    if channel is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):  # no event: the row is read again anyway
        await asyncio.wait_for(layer.receive(channel), seconds)
