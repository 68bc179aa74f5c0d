"""``manage.py members --workspace SLUG list | invite EMAIL --role R | role USER R |
remove USER | deactivate USER | reactivate USER``."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.accounts import invitations, team
from apps.accounts.models import Membership, Role, User, Workspace


class Command(BaseCommand):
    help = "Invite members and change their roles from the command line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workspace", required=True, help="workspace slug")
        parser.add_argument("--user", default=None, help="act as this username (audited)")
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser("list", help="members and their roles")
        inviting = actions.add_parser("invite", help="invite an email address; prints the link")
        inviting.add_argument("email")
        inviting.add_argument("--role", choices=Role.values, default=Role.BUILDER)
        role = actions.add_parser("role", help="change a member's role")
        role.add_argument("username")
        role.add_argument("role", choices=Role.values)
        for name in ("remove", "deactivate", "reactivate"):
            actions.add_parser(name, help=f"{name} a member").add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        workspace = Workspace.objects.filter(slug=options["workspace"]).first()
        if workspace is None:
            raise CommandError(f"no workspace {options['workspace']!r}")
        actor = User.objects.filter(username=options["user"]).first() if options["user"] else None
        action = options["action"]
        try:
            if action == "list":
                return self._list(workspace)
            if action == "invite":
                sent = invitations.invitation_create(
                    workspace=workspace, actor=actor, email=options["email"], role=options["role"]
                )
                self.stdout.write(
                    json.dumps(
                        {"email": sent.invitation.email, "link": sent.link, "emailed": sent.emailed}
                    )
                )
                return None
            user_id = self._member(workspace, options["username"]).user_id
            if action == "role":
                team.membership_change_role(
                    workspace=workspace, actor=actor, user_id=user_id, role=options["role"]
                )
            elif action == "remove":
                team.membership_remove(workspace=workspace, actor=actor, user_id=user_id)
            else:
                team.user_set_active(
                    workspace=workspace, actor=actor, user_id=user_id, active=action == "reactivate"
                )
        except team.TeamError as error:
            raise CommandError(error.message) from None
        self.stdout.write(f"{action}: {options['username']}")
        return None

    def _list(self, workspace: Workspace) -> None:
        for m in (
            Membership.objects.filter(workspace=workspace)
            .select_related("user")
            .order_by("user__username")
        ):
            row = {
                "username": m.user.username,
                "email": m.user.email,
                "role": m.role,
                "active": m.user.is_active,
            }
            self.stdout.write(json.dumps(row))

    @staticmethod
    def _member(workspace: Workspace, username: str) -> Membership:
        membership = Membership.objects.filter(workspace=workspace, user__username=username).first()
        if membership is None:
            raise CommandError(f"{username!r} is not a member of {workspace.slug}")
        return membership
