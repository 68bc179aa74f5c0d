"""The flow engine: advances runs durably.

``advance(run_id)`` advances one run: Celery tasks, the synchronous webhook path and
retries call it. ``drain_queued`` advances queued runs in claimed batches (new, resumed,
retried and re-driven runs). See ``executor.py`` for the algorithm, ``session.py`` for how
runs are claimed and driven, ``io.py`` for the call-outs in flight.
"""

from .executor import graph_for, version_graph
from .session import AdvanceOutcome, advance, advance_new, drain_queued

__all__ = ["AdvanceOutcome", "advance", "advance_new", "drain_queued", "graph_for", "version_graph"]
