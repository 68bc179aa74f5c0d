"""Forms of the dashboard: its time range (query string) and the SLO targets."""

from __future__ import annotations

from django import forms

from .models import SloTargets
from .selectors import RANGE_NAMES
from .slo import OBJECTIVES


class RangeForm(forms.Form):
    """``?range=`` of the dashboard and its API; ``today`` when absent."""

    range = forms.ChoiceField(choices=[(name, name) for name in RANGE_NAMES], required=False)

    def range_name(self) -> str:
        return self.cleaned_data.get("range") or "today"


class SloTargetsForm(forms.ModelForm):
    """The targets an admin may set; the model's validators bound each one."""

    class Meta:
        model = SloTargets
        fields = [objective.key for objective in OBJECTIVES]
        labels = {
            "run_success_percent": "Run success rate at least (%)",
            "step_p95_ms": "Step p95 latency at most (ms)",
            "model_p95_ms": "Model p95 latency at most (ms)",
            "policy_p95_ms": "Policy p95 latency at most (ms)",
            "inbox_oldest_hours": "Oldest open review task at most (hours)",
        }
        help_texts = {
            "step_p95_ms": "Judged against the slowest block type's 95th percentile.",
            "model_p95_ms": "Latency of model.predict calls as the block measured them.",
            "policy_p95_ms": "Evaluation time of policy.evaluate steps.",
        }
