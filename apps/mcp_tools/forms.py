from __future__ import annotations

from typing import Any

from django import forms

from apps.core import jsonsafe


class FlowToolForm(forms.Form):
    enabled = forms.BooleanField(required=False)
    name = forms.CharField(max_length=64)
    description = forms.CharField(max_length=2000, required=False, widget=forms.Textarea)
    input_schema = forms.CharField(max_length=64 * 1024, required=False, widget=forms.Textarea)
    timeout_seconds = forms.FloatField(min_value=1, max_value=300, initial=30)

    def clean_input_schema(self) -> dict[str, Any]:
        raw = self.cleaned_data["input_schema"].strip()
        if not raw:
            return {}
        try:
            schema = jsonsafe.loads(raw)
        except jsonsafe.UnstorableJSON as error:
            raise forms.ValidationError(f"not JSON: {error}") from None
        if not isinstance(schema, dict):
            raise forms.ValidationError("a JSON Schema is a JSON object")
        return schema
