"""The flow engine: advances runs durably.

``advance(run_id)`` advances one run: Celery tasks, the synchronous webhook path, the
reconciler and retries call it. ``drain_queued`` advances queued runs in claimed batches
(new, resumed and retried runs). See ``executor.py`` for the algorithm.
"""

from .executor import AdvanceOutcome, advance, drain_queued, graph_for

__all__ = ["AdvanceOutcome", "advance", "drain_queued", "graph_for"]
