"""Prometheus exposition of Flowgate's figures at ``/metrics``.

A custom collector reads Postgres at scrape time (see ``selectors``), so the figures are
the same whichever process serves the scrape, and cover every worker. Counters are counts
of rows: when retention purges old runs they drop, which Prometheus treats as a counter
reset.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from apps.runs.models import TERMINAL_RUN_STATUSES, RunStatus

from . import selectors


class FlowgateCollector:
    """Collects run, step and queue figures from the database on every scrape."""

    def collect(self) -> Iterator[Metric]:
        yield from self._runs()
        yield from self._steps()
        yield GaugeMetricFamily(
            "flowgate_queue_lag_seconds",
            "How long the oldest due run has been waiting for a worker.",
            value=selectors.queue_lag_seconds(),
        )
        waiting = GaugeMetricFamily(
            "flowgate_waiting_steps", "Steps parked on a wait, by kind.", labels=["kind"]
        )
        for kind, count in selectors.waiting_steps().items():
            waiting.add_metric([kind or "unknown"], count)
        yield waiting
        backlog = selectors.review_backlog()
        yield GaugeMetricFamily(
            "flowgate_review_tasks_open", "Open human-review tasks.", value=backlog.open
        )
        yield GaugeMetricFamily(
            "flowgate_review_tasks_overdue", "Open review tasks past due.", value=backlog.overdue
        )
        yield GaugeMetricFamily(
            "flowgate_review_backlog_age_seconds",
            "Age of the oldest open review task.",
            value=backlog.oldest_seconds,
        )

    def _runs(self) -> Iterator[Metric]:
        started = CounterMetricFamily(
            "flowgate_runs_started", "Runs started, by trigger.", labels=["trigger"]
        )
        for trigger, count in sorted(selectors.runs_by_trigger().items()):
            started.add_metric([trigger], count)
        yield started
        by_status = selectors.runs_by_status()
        finished = CounterMetricFamily(
            "flowgate_runs_finished", "Runs that ended, by final status.", labels=["status"]
        )
        active = GaugeMetricFamily(
            "flowgate_runs_active", "Runs not finished yet, by status.", labels=["status"]
        )
        for status in RunStatus.values:
            family = finished if status in TERMINAL_RUN_STATUSES else active
            family.add_metric([status], by_status[status])
        yield finished
        yield active

    def _steps(self) -> Iterator[Metric]:
        durations = HistogramMetricFamily(
            "flowgate_step_duration_seconds",
            "Duration of finished step attempts, by block type.",
            labels=["block"],
        )
        for histogram in selectors.step_duration_histograms():
            buckets: list[tuple[str, Any]] = [
                (repr(float(bound)), count) for bound, count in histogram.buckets
            ]
            buckets.append(("+Inf", histogram.count))
            durations.add_metric([histogram.block], buckets, histogram.sum_seconds)
        yield durations
        attempts = CounterMetricFamily(
            "flowgate_step_attempts",
            "Step attempts by block type and outcome (failed, retry_scheduled, succeeded).",
            labels=["block", "status"],
        )
        for (block, status), count in sorted(selectors.step_outcomes().items()):
            attempts.add_metric([block, status], count)
        yield attempts


def exposition() -> bytes:
    """The text exposition format of a fresh registry holding only Flowgate's collector
    (no per-process default collectors: the figures must not depend on the process)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FlowgateCollector())  # type: ignore[arg-type]
    return generate_latest(registry)
