"""``manage.py studio``: run the whole of Flowgate on this machine.

Finds or starts Postgres and Redis, migrates, seeds the demo workspace, then runs the web
server (ASGI), a Celery worker, Celery beat and the model services under one supervisor.
Ctrl-C (or SIGTERM) stops every process it started.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from apps.core import localservices
from studio import serve
from studio.processes import (
    MAIL_SINK_PORT,
    ProcessSpec,
    mail_sink_process,
    mlflow_process,
    model_service_process,
    studio_processes,
)
from studio.supervisor import Supervisor


class Command(BaseCommand):
    help = "Run the whole studio: web, worker, scheduler, model services and demo data."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))
        parser.add_argument("--concurrency", type=int, default=2)
        parser.add_argument(
            "--web-processes",
            type=int,
            default=serve.default_processes(os.environ),
            help="uvicorn processes serving the port (more take more webhooks per second)",
        )
        parser.add_argument("--no-seed", action="store_true", help="skip the demo data")
        parser.add_argument(
            "--no-models", action="store_true", help="start neither MLflow nor the model service"
        )

    def handle(
        self,
        *args,
        host: str,
        port: int,
        concurrency: int,
        web_processes: int,
        no_seed: bool,
        no_models: bool,
        **options,
    ):
        started = self._ensure_services()
        self._trainer: subprocess.Popen | None = None
        try:
            self._prepare(seed=not no_seed)
            self._banner(host, port, seeded=not no_seed)
            models = [] if no_models else self._model_processes()
            if models and not no_seed:
                self._train_demo_models_when_up()
            exit_code = self._supervise(
                host, port, concurrency, web_processes, [*models, *self._mail_sink()]
            )
        finally:
            if self._trainer is not None and self._trainer.poll() is None:
                self._trainer.terminate()
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

    def _model_processes(self) -> list[ProcessSpec]:
        """MLflow and the model service, each unless its URL is another machine's (an
        external service) or something already answers there (another studio's)."""
        uri = settings.FLOWGATE["MLFLOW_TRACKING_URI"]
        url = settings.FLOWGATE["MODEL_SERVICE_URL"]
        specs = []
        if self._should_start(uri, "MLflow registry"):
            specs.append(mlflow_process(tracking_uri=uri, var_dir=settings.VAR_DIR))
        if self._should_start(url, "model service"):
            specs.append(model_service_process(service_url=url, tracking_uri=uri))
        return specs

    def _mail_sink(self) -> list[ProcessSpec]:
        """The local mail sink the demo's ``demo-mail`` connection sends to."""
        url = f"smtp://127.0.0.1:{MAIL_SINK_PORT}"
        if not self._should_start(url, "mail sink"):
            return []
        return [mail_sink_process(port=MAIL_SINK_PORT)]

    def _should_start(self, url: str, what: str) -> bool:
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            local = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            local = False
        if not local:
            self._say(f"using the external {what} at {url}")
            return False
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.settimeout(1)
            if (
                probe.connect_ex((host if host != "localhost" else "127.0.0.1", parts.port or 80))
                == 0
            ):
                self._say(f"using the {what} already listening at {url}")
                return False
        return True

    def _train_demo_models_when_up(self) -> None:
        """Once MLflow answers, train and register the demo models (kept if they exist)."""
        manage = str(settings.BASE_DIR / "manage.py")
        command = [sys.executable, manage, "models", "train_demo", "--wait", "180"]

        def train() -> None:
            self._trainer = subprocess.Popen(command, stdin=subprocess.DEVNULL)
            if self._trainer.wait() == 0:
                self._say("demo models are registered")
            else:
                self._say("training the demo models failed (see above)")

        threading.Thread(target=train, name="train-demo-models", daemon=True).start()

    def _supervise(
        self,
        host: str,
        port: int,
        concurrency: int,
        web_processes: int,
        extra: Sequence[ProcessSpec] = (),
    ) -> int:
        environment = {**os.environ, **self._child_environment()}
        specs = [
            *studio_processes(
                host=host, port=port, worker_concurrency=concurrency, web_processes=web_processes
            ),
            *extra,
        ]
        # A child that exits is restarted with backoff; Ctrl-C/SIGTERM stops them all.
        supervisor = Supervisor(specs, environment, say=self._say)
        supervisor.install_signal_handlers()
        return supervisor.run()

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
