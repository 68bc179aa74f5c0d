"""The audit trail's filters (query string), shared by the page and the exports."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django import forms
from django.utils import timezone


class AuditFilterForm(forms.Form):
    actor = forms.CharField(
        required=False, max_length=150, widget=forms.TextInput({"placeholder": "name or username"})
    )
    action = forms.ChoiceField(required=False)
    object = forms.CharField(
        required=False,
        max_length=64,
        label="Object",
        widget=forms.TextInput({"placeholder": "run, flow, or an id"}),
    )
    since = forms.DateField(required=False, label="From", widget=forms.DateInput({"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput({"type": "date"}))

    def __init__(self, *args: Any, actions: list[str] = (), **kwargs: Any) -> None:  # type: ignore[assignment]
        super().__init__(*args, **kwargs)
        prefixes = sorted({action.split(".")[0] for action in actions})
        choices = [("", "Any action")]
        choices += [(prefix, f"{prefix}.*") for prefix in prefixes]
        choices += [(action, action) for action in actions if action not in prefixes]
        self.fields["action"].choices = choices

    def selector_filters(self) -> dict[str, Any]:
        data = self.cleaned_data
        filters: dict[str, Any] = {
            "actor": data.get("actor", "").strip(),
            "action": data.get("action", ""),
            "object_ref": data.get("object", "").strip(),
        }
        if data.get("since"):
            filters["since"] = timezone.make_aware(datetime.combine(data["since"], time.min))
        if data.get("until"):
            end = data["until"] + timedelta(days=1)
            filters["until"] = timezone.make_aware(datetime.combine(end, time.min))
        return filters
