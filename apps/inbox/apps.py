from django.apps import AppConfig


class InboxConfig(AppConfig):
    name = "apps.inbox"
    label = "inbox"
    verbose_name = "Inbox"

    def ready(self) -> None:
        from . import blocks

        blocks.register()
