"""The flow engine: advances runs durably, one claimed run at a time.

``advance(run_id)`` is the whole interface: Celery tasks, the synchronous webhook path,
the reconciler and resumptions all call it. See ``executor.py`` for the algorithm.
"""

from .executor import AdvanceOutcome, advance, graph_for

__all__ = ["AdvanceOutcome", "advance", "graph_for"]
