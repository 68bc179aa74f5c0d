"""``manage.py seed_demo``: the demo workspace, users and each app's demo content.

An app adds demo content by defining ``seed_demo(self, *, workspace, users)`` on its
AppConfig; this command calls each in INSTALLED_APPS order, after sorting by the config's
``seed_order`` (default 0; flows seed last). Every seeder is idempotent.
"""

from __future__ import annotations

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from apps.accounts.demo import seed_accounts


class Command(BaseCommand):
    help = "Create or refresh the demo workspace, users and demo content."

    def handle(self, *args, **options) -> None:
        with transaction.atomic():
            workspace, users = seed_accounts()
        configs = sorted(apps.get_app_configs(), key=lambda c: getattr(c, "seed_order", 0))
        for config in configs:
            seeder = getattr(config, "seed_demo", None)
            if seeder is not None:
                seeder(workspace=workspace, users=users)
                self.stdout.write(f"seeded {config.label}")
        self.stdout.write(self.style.SUCCESS(f"demo workspace '{workspace.name}' is ready"))
