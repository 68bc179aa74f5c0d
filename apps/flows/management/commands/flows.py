"""``manage.py flows import FILE | export SLUG | run SLUG --input JSON --wait |
eval SLUG [--version A --compare B]``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.accounts.models import User, Workspace
from apps.evaluations import cli as evaluation_cli
from apps.flows import selectors, services
from apps.runs.blocks import envelope
from apps.runs.models import TERMINAL_RUN_STATUSES, Run, RunStatus, Trigger
from apps.runs.services import RunError, run_start


class Command(BaseCommand):
    help = "Import, export and run flows from the command line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workspace", default="demo", help="workspace slug (default: demo)")
        parser.add_argument("--user", default=None, help="act as this username (default: none)")
        actions = parser.add_subparsers(dest="action", required=True)
        importing = actions.add_parser(
            "import",
            help="create a flow from a *.flow.json file (or a new draft of the flow with its slug)",
        )
        importing.add_argument("file")
        importing.add_argument("--publish", action="store_true", help="publish it right away")
        importing.add_argument(
            "--slug", default="", help="the flow to update (default: the slug of its name)"
        )
        exporting = actions.add_parser("export", help="print a flow's definition")
        exporting.add_argument("slug")
        exporting.add_argument(
            "--version", type=int, default=None, help="a published version (default: draft)"
        )
        running = actions.add_parser("run", help="run a flow's published version")
        running.add_argument("slug")
        running.add_argument("--input", default="{}", help="the trigger body as JSON")
        running.add_argument("--wait", action="store_true", help="wait for the result and print it")
        running.add_argument("--timeout", type=float, default=120)
        evaluating = actions.add_parser(
            "eval", help="compare two versions on the flow's evaluation cases"
        )
        evaluation_cli.add_arguments(evaluating)

    def handle(self, *args: Any, **options: Any) -> None:
        workspace = Workspace.objects.filter(slug=options["workspace"]).first()
        if workspace is None:
            raise CommandError(f"no workspace {options['workspace']!r}")
        actor = User.objects.filter(username=options["user"]).first() if options["user"] else None
        handler = {
            "import": self._import,
            "export": self._export,
            "run": self._run,
            "eval": self._eval,
        }[options["action"]]
        handler(workspace, actor, options)

    def _import(self, workspace: Workspace, actor: Any, options: dict[str, Any]) -> None:
        try:
            document = json.loads(Path(options["file"]).read_text())
        except (OSError, ValueError) as error:
            raise CommandError(f"cannot read {options['file']}: {error}") from None
        try:
            flow = services.flow_import(
                workspace=workspace, actor=actor, document=document, slug=options["slug"]
            )
            if options["publish"]:
                services.flow_publish(flow=flow, actor=actor, note="imported from the command line")
        except services.FlowError as error:
            lines = [
                error.message,
                *(f"  {p.node or '-'} {p.field or ''}: {p.message}" for p in error.problems),
                *(f"  {reason}" for reason in error.reasons),
            ]
            raise CommandError("\n".join(lines)) from None
        self.stdout.write(
            json.dumps({"id": str(flow.id), "slug": flow.slug, "status": flow.status})
        )

    def _export(self, workspace: Workspace, actor: Any, options: dict[str, Any]) -> None:
        flow = self._flow(workspace, options["slug"])
        try:
            document = services.flow_export(flow=flow, number=options["version"])
        except services.FlowError as error:
            raise CommandError(error.message) from None
        self.stdout.write(json.dumps(document, indent=2))

    def _run(self, workspace: Workspace, actor: Any, options: dict[str, Any]) -> None:
        flow = self._flow(workspace, options["slug"])
        try:
            body = json.loads(options["input"])
        except ValueError as error:
            raise CommandError(f"--input is not JSON: {error}") from None
        try:
            run = run_start(
                flow=flow, trigger=Trigger.MANUAL, payload=envelope(body), actor=actor
            ).run
        except RunError as error:
            raise CommandError(str(error)) from None
        if not options["wait"]:
            self.stdout.write(json.dumps({"run": str(run.id), "status": run.status}))
            return
        run = self._wait(run, options["timeout"])
        self.stdout.write(
            json.dumps(
                {
                    "run": str(run.id),
                    "status": run.status,
                    "output": run.output,
                    "error": run.error,
                },
                default=str,
            )
        )
        if run.status != RunStatus.SUCCEEDED:
            sys.exit(1)

    def _eval(self, workspace: Workspace, actor: Any, options: dict[str, Any]) -> None:
        flow = self._flow(workspace, options["slug"])
        if evaluation_cli.evaluate(flow, actor, options, self.stdout.write):
            sys.exit(1)

    @staticmethod
    def _wait(run: Run, timeout: float) -> Run:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run.refresh_from_db()
            if run.status in TERMINAL_RUN_STATUSES:
                return run
            time.sleep(0.2)
        raise CommandError(
            f"run {run.id} did not finish within {timeout:g} s (status: {run.status})"
        )

    @staticmethod
    def _flow(workspace: Workspace, slug: str) -> Any:
        from django.http import Http404

        try:
            return selectors.flow_get_by_slug(workspace=workspace, slug=slug)
        except Http404:
            raise CommandError(f"no flow {slug!r} in workspace {workspace.slug!r}") from None
