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
        yield from self._workspaces()
        yield GaugeMetricFamily(
            "flowgate_queue_depth",
            "Runs queued and due that no worker has picked up yet.",
            value=selectors.queue_depth(),
        )
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

    def _workspaces(self) -> Iterator[Metric]:
        """Per workspace, over the last ``METRICS_RANGE``: what the dashboard shows for that
        range (latency of models and policies, error and retry ratios, cost, SLO states)."""
        from apps.accounts.models import Workspace

        window = selectors.METRICS_RANGE
        labels = ["workspace"]
        families = {
            "model": GaugeMetricFamily(
                "flowgate_model_latency_seconds",
                f"Model call latency quantiles over the last {window}.",
                labels=[*labels, "quantile"],
            ),
            "policy": GaugeMetricFamily(
                "flowgate_policy_latency_seconds",
                f"Policy evaluation time quantiles over the last {window}.",
                labels=[*labels, "quantile"],
            ),
            "errors": GaugeMetricFamily(
                "flowgate_step_error_ratio",
                f"Share of step attempts that raised an error, last {window}.",
                labels=labels,
            ),
            "retries": GaugeMetricFamily(
                "flowgate_step_retry_ratio",
                f"Share of step attempts that were retried, last {window}.",
                labels=labels,
            ),
            "inferences": GaugeMetricFamily(
                "flowgate_model_inferences",
                f"Answered model calls over the last {window}.",
                labels=labels,
            ),
            "cost": GaugeMetricFamily(
                "flowgate_model_cost_per_1000_inferences",
                f"Estimated model cost per 1,000 inferences over the last {window}.",
                labels=[*labels, "currency"],
            ),
            "target": GaugeMetricFamily(
                "flowgate_slo_target", "SLO target, by objective.", labels=[*labels, "slo"]
            ),
            "measured": GaugeMetricFamily(
                "flowgate_slo_measured",
                f"SLO figure measured over the last {window} (absent without data).",
                labels=[*labels, "slo"],
            ),
            "met": GaugeMetricFamily(
                "flowgate_slo_met",
                "1 when the SLO is met, 0 when breached (absent without data).",
                labels=[*labels, "slo"],
            ),
        }
        for workspace in Workspace.objects.order_by("slug"):
            figures = selectors.dashboard_figures(workspace=workspace, range_name=window)
            _add_workspace(families, workspace.slug, figures)
        yield from families.values()

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


def _add_workspace(families: dict[str, GaugeMetricFamily], slug: str, figures: dict) -> None:
    for kind in ("model", "policy"):
        source = figures["models" if kind == "model" else "policies"]
        for quantile, key in (("0.5", "p50_ms"), ("0.95", "p95_ms")):
            if source[key] is not None:
                families[kind].add_metric([slug, quantile], source[key] / 1000)
    steps = figures["steps"]
    if steps["attempts"]:
        families["errors"].add_metric([slug], steps["error_rate"])
        families["retries"].add_metric([slug], steps["retry_rate"])
    families["inferences"].add_metric([slug], figures["models"]["calls"])
    cost = figures["cost"]
    if cost["per_1000_inferences"] is not None:
        families["cost"].add_metric([slug, cost["currency"]], cost["per_1000_inferences"])
    for objective in figures["slo"]:
        families["target"].add_metric([slug, objective["key"]], objective["target"])
        if objective["state"] != "no_data":
            families["measured"].add_metric([slug, objective["key"]], objective["measured"])
            families["met"].add_metric([slug, objective["key"]], objective["state"] == "met")


def exposition() -> bytes:
    """The text exposition format of a fresh registry holding only Flowgate's collector
    (no per-process default collectors: the figures must not depend on the process)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FlowgateCollector())
    return generate_latest(registry)
