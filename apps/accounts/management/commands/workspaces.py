"""``manage.py workspaces list | create NAME | rename SLUG NAME | archive SLUG | restore SLUG``."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.accounts import team
from apps.accounts.models import User, Workspace


class Command(BaseCommand):
    help = "Create, rename, archive and restore workspaces."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", default=None, help="act as (and, on create, make admin)")
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser("list", help="every workspace, with its member count")
        creating = actions.add_parser("create", help="create a workspace")
        creating.add_argument("name")
        creating.add_argument("--slug", default="", help="its address (default: from the name)")
        renaming = actions.add_parser("rename", help="rename a workspace")
        renaming.add_argument("slug")
        renaming.add_argument("name")
        for name in ("archive", "restore"):
            actions.add_parser(name, help=f"{name} a workspace").add_argument("slug")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = None
        if options["user"]:
            actor = User.objects.filter(username=options["user"]).first()
            if actor is None:
                raise CommandError(f"no user {options['user']!r}")
        action = options["action"]
        try:
            if action == "list":
                return self._list()
            if action == "create":
                workspace = team.workspace_open(
                    name=options["name"], slug=options["slug"], actor=actor
                )
            else:
                workspace = self._workspace(options["slug"])
                if action == "rename":
                    team.workspace_rename(workspace=workspace, actor=actor, name=options["name"])
                else:
                    team.workspace_archive(
                        workspace=workspace, actor=actor, archived=action == "archive"
                    )
        except team.TeamError as error:
            raise CommandError(error.message) from None
        self.stdout.write(json.dumps(_row(workspace)))

    def _list(self) -> None:
        for workspace in Workspace.objects.order_by("slug"):
            self.stdout.write(json.dumps(_row(workspace)))

    @staticmethod
    def _workspace(slug: str) -> Workspace:
        workspace = Workspace.objects.filter(slug=slug).first()
        if workspace is None:
            raise CommandError(f"no workspace {slug!r}")
        return workspace


def _row(workspace: Workspace) -> dict[str, Any]:
    return {
        "slug": workspace.slug,
        "name": workspace.name,
        "archived": workspace.archived_at is not None,
        "members": workspace.memberships.count(),
    }
