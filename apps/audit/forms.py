"""The audit trail's filters (query string), shared by the page and the exports."""

from __future__ import annotations

import re
from collections.abc import Sequence
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

    def __init__(self, *args: Any, actions: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        prefixes = sorted({action.split(".")[0] for action in actions})
        choices = [("", "Any action")]
        choices += [(prefix, f"{prefix}.*") for prefix in prefixes]
        choices += [(action, action) for action in actions if action not in prefixes]
        action_field = self.fields["action"]
        assert isinstance(action_field, forms.ChoiceField)
        action_field.choices = choices

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


FIELD_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")
MAX_SENSITIVE_FIELDS = 500


class DataSettingsForm(forms.Form):
    """Settings → Data: field classification (PII) and run data retention."""

    sensitive_fields = forms.CharField(
        required=False,
        label="Sensitive fields (PII)",
        widget=forms.Textarea({"rows": 6, "placeholder": "email\nssn\ndate_of_birth"}),
        help_text=(
            "One field name per line (or comma-separated). Any key with this name, at any "
            "depth, is masked in decision records, run pages and the API, and audit exports. "
            "Keys that look like credentials are always masked."
        ),
    )
    retention_days = forms.IntegerField(
        label="Keep run data (days)",
        min_value=1,
        max_value=3650,
        help_text=(
            "Finished runs and their steps older than this are purged daily. Waiting and "
            "running runs are never purged; the audit trail is always kept."
        ),
    )

    def clean_sensitive_fields(self) -> list[str]:
        raw = self.cleaned_data.get("sensitive_fields") or ""
        names = [part.strip() for part in re.split(r"[\n,]", raw) if part.strip()]
        bad = [name for name in names if not FIELD_NAME.match(name)]
        if bad:
            raise forms.ValidationError(
                "Not a field name: %(names)s (letters, digits, _ . - only).",
                params={"names": ", ".join(bad[:5])},
            )
        if len(names) > MAX_SENSITIVE_FIELDS:
            raise forms.ValidationError(f"At most {MAX_SENSITIVE_FIELDS} field names.")
        return sorted({name.lower() for name in names})
