"""Evaluations: example inputs with expected results per flow, run against two versions."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.models import WorkspaceOwned


class EvalCase(WorkspaceOwned):
    """One example for a flow: the trigger ``input`` (the run's ``body``) and what the
    result must contain (``expected``: every field given must be in the flow's response
    body, or its output, with that value; nested objects compare the same way)."""

    flow = models.ForeignKey("flows.Flow", on_delete=models.CASCADE, related_name="eval_cases")
    name = models.CharField(max_length=200)
    input = models.JSONField(default=dict)
    expected = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["flow", "name"], name="eval_case_name_per_flow")
        ]

    def __str__(self) -> str:
        return self.name


class Evaluation(WorkspaceOwned):
    """A comparison of two versions of a flow (``baseline`` and ``candidate``: ``draft`` or
    ``v<number>``) on the flow's cases: one dry run (trigger ``evaluation``) per case and
    side, left out of the dashboard. Its figures are read from those runs
    (``selectors.evaluation_report``)."""

    flow = models.ForeignKey("flows.Flow", on_delete=models.CASCADE, related_name="evaluations")
    baseline = models.CharField(max_length=20)
    candidate = models.CharField(max_length=20)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["flow", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.baseline} vs {self.candidate}"


class EvaluationSide(models.TextChoices):
    BASELINE = "baseline", "Baseline"
    CANDIDATE = "candidate", "Candidate"


class EvaluationRun(models.Model):
    """One case run on one side. The case's name and expectation are copied: editing or
    deleting a case later does not change a past evaluation's verdicts."""

    id = models.BigAutoField(primary_key=True)
    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="items")
    side = models.CharField(max_length=10, choices=EvaluationSide.choices)
    case = models.ForeignKey(EvalCase, null=True, on_delete=models.SET_NULL, related_name="+")
    case_name = models.CharField(max_length=200)
    expected = models.JSONField(default=dict)
    # Runs may be purged by retention: the row stays, its verdict reads "run deleted".
    run = models.ForeignKey("runs.Run", null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["case_name", "side"]

    def __str__(self) -> str:
        return f"{self.case_name} ({self.side})"
