"""``manage.py connections rotate-keys``: re-encrypt every connection's secrets under the
current ``FLOWGATE_ENCRYPTION_KEY`` (the old key must be in
``FLOWGATE_RETIRED_ENCRYPTION_KEYS`` while this runs)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.connectors.crypto import SecretsUnreadable
from apps.connectors.services import connection_keys_rotate


class Command(BaseCommand):
    help = "Manage connections: rotate-keys re-encrypts every secret under the current key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["rotate-keys"])

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        try:
            count = connection_keys_rotate()
        except SecretsUnreadable as error:
            raise CommandError(
                f"{error}; is the old key in FLOWGATE_RETIRED_ENCRYPTION_KEYS?"
            ) from None
        self.stdout.write(f"re-encrypted the secrets of {count} connection(s)")
