"""``manage.py runs purge [--dry-run] [--workspace SLUG]``: apply data retention now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.accounts.models import Workspace
from apps.runs.services import runs_purge


class Command(BaseCommand):
    help = (
        "Delete finished runs older than each workspace's retention (Settings → Data); "
        "--dry-run prints what would be deleted. Audit events are kept."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("operation", choices=["purge"])
        parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")
        parser.add_argument("--workspace", help="slug of one workspace (default: all)")

    def handle(self, *args: Any, **options: Any) -> None:
        workspaces = Workspace.objects.order_by("slug")
        if options["workspace"]:
            workspaces = workspaces.filter(slug=options["workspace"])
            if not workspaces.exists():
                raise CommandError(f"no workspace {options['workspace']!r}")
        dry_run = options["dry_run"]
        verb = "would delete" if dry_run else "deleted"
        for report in runs_purge(workspaces=workspaces, dry_run=dry_run):
            self.stdout.write(
                f"{report.workspace_slug}: {verb} {report.runs} runs, {report.steps} steps "
                f"(finished before {report.cutoff:%Y-%m-%d %H:%M} UTC, "
                f"keeping {report.retention_days} days)"
            )
