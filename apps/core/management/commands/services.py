"""``manage.py services up|down|status``: make Postgres and Redis available."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.core import localservices


class Command(BaseCommand):
    help = "Find or start Postgres and Redis (system packages, else embedded under var/)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=["up", "down", "status"])

    def handle(self, *args, action: str, **options) -> None:
        var_dir = settings.VAR_DIR
        if action == "down":
            stopped = localservices.stop_detached(var_dir)
            self.stdout.write("stopped: " + (", ".join(stopped) or "nothing"))
            return
        database = settings.DATABASES["default"]
        postgres_url = f"postgres://{database['HOST']}:{database['PORT']}/"
        if action == "status":
            for name, url, port in (
                ("postgres", postgres_url, 5432),
                ("redis", settings.REDIS_URL, 6379),
            ):
                endpoint = localservices.endpoint_of(url, port)
                state = "up" if localservices.is_reachable(endpoint) else "down"
                self.stdout.write(f"{name}: {state} ({endpoint.host}:{endpoint.port})")
            return
        try:
            localservices.ensure_postgres(postgres_url, var_dir, detach=True, say=self.stdout.write)
            localservices.ensure_redis(
                settings.REDIS_URL, var_dir, detach=True, say=self.stdout.write
            )
            if localservices.ensure_database(database):
                self.stdout.write(f"created database {database['NAME']}")
        except localservices.ServiceError as error:
            raise CommandError(str(error)) from None
        self.stdout.write("postgres and redis are up")
