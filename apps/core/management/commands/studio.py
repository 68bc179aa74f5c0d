"""``manage.py studio``: run the whole of Flowgate on this machine.

Finds or starts Postgres and Redis, migrates, seeds the demo workspace, then runs the web
server (ASGI), a Celery worker, Celery beat and the model services under one supervisor.
Ctrl-C (or SIGTERM) stops every process it started.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from honcho.manager import Manager

from apps.core import localservices
from studio.processes import studio_processes


class Command(BaseCommand):
    help = "Run the whole studio: web, worker, scheduler, model services and demo data."

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))
        parser.add_argument("--concurrency", type=int, default=2)
        parser.add_argument("--no-seed", action="store_true", help="skip the demo data")

    def handle(self, *args, host: str, port: int, concurrency: int, no_seed: bool, **options):  # type: ignore[no-untyped-def]
        started = self._ensure_services()
        try:
            self._prepare(seed=not no_seed)
            self._banner(host, port, seeded=not no_seed)
            exit_code = self._supervise(host, port, concurrency)
        finally:
            for service in reversed(started):
                service.stop()
        if exit_code:
            sys.exit(exit_code)

    def _ensure_services(self) -> list[localservices.StartedService]:
        database = settings.DATABASES["default"]
        started = []
        try:
            postgres = localservices.ensure_postgres(
                f"postgres://{database['HOST']}:{database['PORT']}/",
                settings.VAR_DIR,
                detach=False,
                say=self._say,
            )
            started += [postgres] if postgres else []
            redis = localservices.ensure_redis(
                settings.REDIS_URL, settings.VAR_DIR, detach=False, say=self._say
            )
            started += [redis] if redis else []
            if localservices.ensure_database(database):
                self._say(f"created database {database['NAME']}")
        except localservices.ServiceError as error:
            for service in started:
                service.stop()
            raise CommandError(str(error)) from None
        return started

    def _prepare(self, *, seed: bool) -> None:
        self._say("applying migrations")
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        if seed:
            self._say("seeding the demo workspace")
            call_command("seed_demo", verbosity=0)

    def _supervise(self, host: str, port: int, concurrency: int) -> int:
        manager = Manager()
        environment = {**os.environ, **self._child_environment()}
        for spec in studio_processes(host=host, port=port, worker_concurrency=concurrency):
            manager.add_process(spec.name, shlex.join(spec.command), env=environment)
        # honcho stops every child on SIGINT/SIGTERM and when any one of them exits.
        signal.signal(signal.SIGTERM, lambda *_: manager.terminate())
        manager.loop()
        return manager.returncode or 0

    def _child_environment(self) -> dict[str, str]:
        return {"PYTHONUNBUFFERED": "1"}

    def _banner(self, host: str, port: int, *, seeded: bool) -> None:
        from apps.accounts.demo import DEMO_USERS

        lines = ["", f"  Flowgate is starting at  http://{host}:{port}/", ""]
        if seeded:
            lines.append("  Demo logins (workspace 'Acme Demo'):")
            lines += [
                f"    {u.role:<9} {u.username:<10} password: {u.password}" for u in DEMO_USERS
            ]
        lines += ["", "  Press Ctrl-C to stop everything.", ""]
        self.stdout.write(self.style.SUCCESS("\n".join(lines)))

    def _say(self, message: str) -> None:
        self.stdout.write(f"[flowgate] {message}")
