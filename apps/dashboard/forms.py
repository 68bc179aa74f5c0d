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
            objective.key: f"{objective.label}: {objective.bound.replace('_', ' ')} "
            f"({objective.unit})"
            for objective in OBJECTIVES
        }
        help_texts = {
            "model_p95_ms": "Latency of model.predict calls, as the block measured them.",
            "policy_p95_ms": "Evaluation time of policy.evaluate steps, in the policy engine.",
        }
