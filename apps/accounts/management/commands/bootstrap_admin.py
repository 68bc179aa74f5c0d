"""``manage.py bootstrap_admin --username U --email E --workspace NAME``: the first admin
and workspace of a fresh deployment, without the demo data.

The password comes from ``FLOWGATE_ADMIN_PASSWORD`` when set (for scripted installs),
else it is asked for twice on the terminal. Refuses when the user already exists, so it
never resets someone's password.
"""

from __future__ import annotations

import getpass
import os
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from apps.accounts import team
from apps.accounts.models import User


class Command(BaseCommand):
    help = "Create the first admin user and their workspace on a fresh deployment."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", required=True)
        parser.add_argument("--email", required=True)
        parser.add_argument("--workspace", required=True, help="the workspace's name")
        parser.add_argument("--slug", default="", help="its address (default: from the name)")

    def handle(self, *args: Any, **options: Any) -> None:
        if User.objects.filter(username=options["username"]).exists():
            raise CommandError(f"user {options['username']!r} exists already")
        user = User(username=options["username"], email=options["email"].strip().lower())
        password = os.environ.get("FLOWGATE_ADMIN_PASSWORD") or self._ask()
        try:
            validate_password(password, user)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        user.set_password(password)
        try:
            with transaction.atomic():
                user.save()
                workspace = team.workspace_open(
                    name=options["workspace"], slug=options["slug"], actor=user
                )
        except team.TeamError as error:
            raise CommandError(error.message) from None
        self.stdout.write(
            f"Created {user.username}, admin of {workspace.name} (/w/{workspace.slug}/). "
            "Log in and invite your team from Settings → Members."
        )

    @staticmethod
    def _ask() -> str:
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password (again): "):
            raise CommandError("the passwords differ")
        return first
