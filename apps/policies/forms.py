"""Forms for the policy pages: they parse and validate input shape only."""

from __future__ import annotations

from typing import Any

from django import forms

from apps.core import jsonsafe


class JSONTextField(forms.CharField):
    """A textarea holding JSON; ``cleaned_data`` is the parsed value."""

    def __init__(self, *, object_only: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault(
            "widget", forms.Textarea(attrs={"rows": 6, "class": "code", "spellcheck": "false"})
        )
        super().__init__(**kwargs)
        self.object_only = object_only

    def to_python(self, value: Any) -> Any:
        text = super().to_python(value) or ""
        if not text.strip():
            if self.required:
                raise forms.ValidationError(self.error_messages["required"], code="required")
            return None
        try:
            parsed = jsonsafe.loads(text)
        except jsonsafe.UnstorableJSON as error:
            raise forms.ValidationError(f"Cannot be used: {error}.") from None
        if self.object_only and not isinstance(parsed, dict):
            raise forms.ValidationError('Must be a JSON object, like {"amount": 100}.')
        return parsed

    def validate(self, value: Any) -> None:
        """Emptiness was judged on the text: ``{}``, ``[]`` and ``null`` are values here."""


class PolicyCreateForm(forms.Form):
    name = forms.CharField(max_length=120)
    slug = forms.SlugField(max_length=60, help_text="Flows refer to the policy by this name.")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class DraftForm(forms.Form):
    source = forms.CharField(
        strip=False,
        widget=forms.Textarea(attrs={"rows": 24, "class": "code", "spellcheck": "false"}),
    )


class PublishForm(forms.Form):
    note = forms.CharField(max_length=300, required=False)


class _OwnIds(forms.Form):
    """Field ids prefixed with the form's name: several forms share the policy page, and a
    label must point at its own form's field (``id_rule`` twice points at the first)."""

    id_prefix = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", f"{self.id_prefix}_%s")
        super().__init__(*args, **kwargs)


class TestCaseForm(_OwnIds):
    id_prefix = "test"
    name = forms.CharField(max_length=120)
    rule = forms.RegexField(regex=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=100)
    input = JSONTextField(object_only=True, initial="{}")
    expected = JSONTextField(initial="true")


class PlaygroundForm(_OwnIds):
    id_prefix = "playground"
    rule = forms.RegexField(regex=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=100)
    input = JSONTextField(object_only=True, initial="{}")
    source = forms.CharField(strip=False, required=False, widget=forms.HiddenInput)
