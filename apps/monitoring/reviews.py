"""Reviewers as a source of labels, and how much of each flow runs without them.

A reviewer's decision on a case the model scored is ground truth for that case: the
label is ``decision_data["label"]`` when the review form asked for one, else the model's
``review_labels`` mapping of the decision (``{"approve": "legit", "reject": "fraud"}``).
Collected by the scheduled check; a sample that already has a label keeps it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count, F
from django.utils import timezone

from .models import ModelMonitor, PredictionSample


def review_labels_collect(*, workspace_id: Any, days: int = 7) -> int:
    """Label unlabelled samples of runs a reviewer decided since ``days``; returns how
    many samples were labelled."""
    from apps.inbox.models import ReviewTask

    since = timezone.now() - timedelta(days=days)
    mappings = dict(
        ModelMonitor.objects.filter(workspace_id=workspace_id).values_list(
            "model_name", "review_labels"
        )
    )
    waiting = PredictionSample.objects.filter(
        workspace_id=workspace_id, actual="", created_at__gte=since
    )
    tasks = ReviewTask.objects.filter(
        workspace_id=workspace_id,
        decided_at__gte=since,
        run_id__in=waiting.values("run_id"),
    ).values_list("run_id", "decision", "decision_data")
    labelled = 0
    for run_id, decision, data in tasks:
        for sample in waiting.filter(run_id=run_id):
            label = (data or {}).get("label") or mappings.get(sample.model_name, {}).get(decision)
            if not label:
                continue
            sample.actual, sample.label_source = str(label)[:200], "review"
            sample.labelled_at = timezone.now()
            sample.save(update_fields=["actual", "label_source", "labelled_at"])
            labelled += 1
    return labelled


def flow_automation(*, workspace_id: Any, days: int = 7) -> list[dict[str, Any]]:
    """Per flow with sampled model steps: runs, the share that finished without a
    reviewer (automation rate) and, among cases a reviewer labelled, the share where they
    overrode the model (manual-override rate)."""
    from apps.runs.models import Run

    since = timezone.now() - timedelta(days=days)
    sampled = PredictionSample.objects.filter(workspace_id=workspace_id, created_at__gte=since)
    runs = (
        Run.objects.filter(id__in=sampled.values("run_id"))
        .values("flow__name")
        .annotate(total=Count("id", distinct=True))
        .annotate(reviewed=Count("review_tasks__run", distinct=True))
    )
    reviewed = sampled.filter(label_source="review")
    overrides = dict(
        Run.objects.filter(id__in=reviewed.values("run_id"))
        .values("flow__name")
        .annotate(labelled=Count("id", distinct=True))
        .values_list("flow__name", "labelled")
    )
    overridden = dict(
        Run.objects.filter(id__in=reviewed.exclude(actual=F("label")).values("run_id"))
        .values("flow__name")
        .annotate(count=Count("id", distinct=True))
        .values_list("flow__name", "count")
    )
    rows = []
    for row in runs:
        name, total = row["flow__name"], row["total"]
        labelled = overrides.get(name, 0)
        rows.append(
            {
                "flow": name,
                "runs": total,
                "automation_rate": round(1 - row["reviewed"] / total, 4) if total else None,
                "reviewed_labels": labelled,
                "override_rate": round(overridden.get(name, 0) / labelled, 4) if labelled else None,
            }
        )
    return sorted(rows, key=lambda item: item["flow"])
