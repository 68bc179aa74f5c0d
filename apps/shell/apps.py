from django.apps import AppConfig


class ShellConfig(AppConfig):
    """The app shell around the domain apps: landing redirects, the main navigation, the
    live event socket and the local studio commands. Kept out of ``apps.core`` so that the
    core (HTTP, Redis, tracing, JSON, base models) imports no domain app."""

    name = "apps.shell"
    label = "shell"
    verbose_name = "App shell"
