"""``manage.py audit verify [--workspace SLUG] [--no-seal]``: check every workspace's hash
chain (after sealing the events waiting, unless ``--no-seal``), and count those unsealed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.accounts.models import Workspace
from apps.audit.services import audit_verify


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain; exit 1 naming the first tampered record."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("operation", choices=["verify"])
        parser.add_argument("--workspace", help="slug of one workspace (default: all)")
        parser.add_argument(
            "--no-seal",
            action="store_true",
            help="check the chain as it is, without sealing the events waiting first",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        workspaces = Workspace.objects.order_by("slug")
        if options["workspace"]:
            workspaces = workspaces.filter(slug=options["workspace"])
            if not workspaces.exists():
                raise CommandError(f"no workspace {options['workspace']!r}")
        broken = []
        for workspace in workspaces:
            report = audit_verify(workspace_id=workspace.id, seal=not options["no_seal"])
            waiting = f", {report.unsealed} not sealed yet" if report.unsealed else ""
            if report.ok:
                self.stdout.write(f"{workspace.slug}: ok, {report.checked} events{waiting}")
            else:
                broken.append(workspace.slug)
                self.stdout.write(
                    f"{workspace.slug}: TAMPERED at event #{report.first_bad_sequence}: "
                    f"{report.problem} ({report.checked} events checked before it{waiting})"
                )
        if broken:
            raise CommandError(f"the audit chain is broken in {', '.join(broken)}")
