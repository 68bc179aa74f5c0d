"""Forms for the run pages: list filters and bulk actions on the dead-letter list."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.utils import timezone

from .models import RunStatus, Trigger


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


class RunFilterForm(forms.Form):
    """Query-string filters of the run list; ``selector_filters()`` maps them onto
    ``selectors.run_list`` arguments."""

    flow = forms.ChoiceField(required=False)
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *RunStatus.choices])
    trigger = forms.ChoiceField(required=False, choices=[("", "Any trigger"), *Trigger.choices])
    since = forms.DateField(required=False, label="From", widget=forms.DateInput({"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput({"type": "date"}))

    def __init__(self, *args: Any, flows: Any = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["flow"].choices = [("", "All flows")] + [  # type: ignore[attr-defined]
            (str(flow.id), flow.name) for flow in flows
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:
            self.add_error("until", "The end date is before the start date.")
        return data

    def selector_filters(self) -> dict[str, Any]:
        data = self.cleaned_data
        filters: dict[str, Any] = {
            "flow_id": data.get("flow") or None,
            "status": data.get("status") or None,
            "trigger": data.get("trigger") or None,
        }
        if data.get("since"):
            filters["since"] = _start_of(data["since"])
        if data.get("until"):  # inclusive: the whole "to" day
            filters["until"] = _start_of(data["until"] + timedelta(days=1))
        return filters


class BulkRunActionForm(forms.Form):
    action = forms.ChoiceField(
        choices=[("retry", "Retry from the failed step"), ("rerun", "Re-run on latest version")]
    )
    runs = forms.TypedMultipleChoiceField(coerce=str, required=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Any UUID is acceptable here; the selector decides which runs the user may touch.
        self.fields["runs"].valid_value = _is_uuid  # type: ignore[attr-defined]


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
