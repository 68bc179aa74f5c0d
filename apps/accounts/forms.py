from datetime import datetime, timedelta

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils import timezone

from .models import TokenScope


class LoginForm(AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That username and password do not match. Check both and try again.",
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].widget.attrs.update({"autocomplete": "username", "autofocus": True})
        self.fields["password"].widget.attrs.update({"autocomplete": "current-password"})


EXPIRY_CHOICES = [
    ("", "Never"),
    ("7", "7 days"),
    ("30", "30 days"),
    ("90", "90 days"),
    ("365", "1 year"),
]


class ApiTokenCreateForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        label="Token name",
        help_text="What uses it, e.g. “CI pipeline” or “ERP integration”.",
    )
    scope = forms.ChoiceField(
        choices=TokenScope.choices,
        initial=TokenScope.FULL,
        required=False,  # full access unless asked otherwise
        label="Access",
        help_text="Read-only tokens get 403 on anything that changes data.",
    )
    expires_in_days = forms.TypedChoiceField(
        choices=EXPIRY_CHOICES,
        coerce=int,
        empty_value=None,
        required=False,
        label="Expires",
    )

    def clean_scope(self) -> str:
        return self.cleaned_data.get("scope") or TokenScope.FULL

    def expires_at(self) -> datetime | None:
        days = self.cleaned_data.get("expires_in_days")
        return timezone.now() + timedelta(days=days) if days else None


ROLE_CHOICES = [("builder", "Builder"), ("reviewer", "Reviewer"), ("admin", "Admin")]


class InvitationForm(forms.Form):
    email = forms.EmailField(label="Email address", max_length=254)
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial="builder")


class WorkspaceForm(forms.Form):
    name = forms.CharField(max_length=120, label="Name")
    slug = forms.SlugField(
        max_length=60,
        required=False,
        label="Address",
        help_text="Used in URLs, e.g. “finance”. Leave blank to derive it from the name.",
    )


class AcceptInvitationForm(forms.Form):
    username = forms.CharField(max_length=150, label="Username")
    display_name = forms.CharField(max_length=150, required=False, label="Your name")
    password = forms.CharField(widget=forms.PasswordInput, label="Password")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].widget.attrs.update({"autocomplete": "username"})
        self.fields["password"].widget.attrs.update({"autocomplete": "new-password"})
