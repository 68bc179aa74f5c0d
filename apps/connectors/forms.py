"""The connection form, generated from a connection type: its ``Config`` fields become
inputs and its secret fields become write-only password inputs (never rendered back)."""

from __future__ import annotations

import re
import typing
from typing import Any, Literal

from django import forms

from .types import ConnectionType

CONFIG_PREFIX, SECRET_PREFIX = "config_", "secret_"


def _config_field(name: str, info: Any) -> forms.Field:
    label = info.title or name.replace("_", " ").capitalize()
    common: dict[str, Any] = {"label": label, "help_text": info.description or ""}
    annotation = info.annotation
    if typing.get_origin(annotation) is Literal:
        choices = [(value, value) for value in typing.get_args(annotation)]
        return forms.ChoiceField(choices=choices, **common)
    if annotation is bool:
        return forms.BooleanField(required=False, **common)
    if annotation is int:
        return forms.IntegerField(required=info.is_required(), **common)
    if annotation is float:
        return forms.FloatField(required=info.is_required(), **common)
    return forms.CharField(required=info.is_required(), max_length=500, **common)


class ConnectionForm(forms.Form):
    name = forms.SlugField(
        max_length=80, help_text="Blocks refer to the connection by this name; it cannot change."
    )
    description = forms.CharField(max_length=300, required=False)

    def __init__(
        self, *args: Any, connection_type: type[ConnectionType], creating: bool, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.connection_type, self.creating = connection_type, creating
        if not creating:
            del self.fields["name"]
        for name, info in connection_type.Config.model_fields.items():
            self.fields[CONFIG_PREFIX + name] = _config_field(name, info)
            if info.default is not None and not info.is_required():
                self.fields[CONFIG_PREFIX + name].initial = info.default
        for secret in connection_type.secret_fields:
            help_text = secret.help
            if not creating:
                help_text = f"{help_text} Leave blank to keep the stored value.".strip()
            self.fields[SECRET_PREFIX + secret.name] = forms.CharField(
                label=secret.label,
                help_text=help_text,
                required=secret.required and creating,
                widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
            )

    @staticmethod
    def initial_for(config: dict[str, Any], description: str) -> dict[str, Any]:
        return {"description": description, **{CONFIG_PREFIX + k: v for k, v in config.items()}}

    def config(self) -> dict[str, Any]:
        values = {}
        for name in self.connection_type.Config.model_fields:
            value = self.cleaned_data.get(CONFIG_PREFIX + name)
            if value is not None:  # an empty number keeps the type's default
                values[name] = value
        return values

    def secrets(self) -> dict[str, str]:
        return {
            secret.name: self.cleaned_data.get(SECRET_PREFIX + secret.name) or ""
            for secret in self.connection_type.secret_fields
        }

    def add_service_errors(self, fields: dict[str, str], message: str) -> None:
        placed = False
        for key, text in fields.items():
            for candidate in (key, CONFIG_PREFIX + key, SECRET_PREFIX + key):
                if candidate in self.fields:
                    self.add_error(candidate, text)
                    placed = True
                    break
        if not placed:
            self.add_error(None, message)


class EgressSettingsForm(forms.Form):
    """Settings → Egress: the workspace's allow-list (checked by the service)."""

    allowlist = forms.CharField(
        required=False,
        label="Allowed private hosts and networks",
        widget=forms.Textarea({"rows": 6, "placeholder": "crm.office.internal\n10.20.0.0/16"}),
        help_text=(
            "One host name or network per line. Flows and connections of this workspace may "
            "call these although they are private or special-purpose addresses. Cloud "
            "metadata addresses stay refused whatever is listed."
        ),
    )

    def entries(self) -> list[str]:
        raw = self.cleaned_data.get("allowlist") or ""
        return [part.strip() for part in re.split(r"[\n,]", raw) if part.strip()]
