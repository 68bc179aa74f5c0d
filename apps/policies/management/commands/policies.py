"""``manage.py policies --workspace W export [SLUG...] --dir D | import FILE... [--publish]
| test [SLUG...]``: policies as code, for a team that keeps them in git and loads them in
CI. ``test`` exits 1 when a test fails."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.accounts.models import User, Workspace
from apps.policies import as_code, selectors
from apps.policies.services import PolicyValidationError

SUFFIX = ".policy.json"


class Command(BaseCommand):
    help = "Export, import and test policies as code (*.policy.json documents)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workspace", default="demo", help="workspace slug (default: demo)")
        parser.add_argument("--user", default=None, help="act as this username (audited)")
        actions = parser.add_subparsers(dest="action", required=True)
        exporting = actions.add_parser("export", help="write policies as *.policy.json")
        exporting.add_argument("slugs", nargs="*", help="default: every policy")
        exporting.add_argument("--dir", default=None, help="a folder (default: print one)")
        importing = actions.add_parser("import", help="load *.policy.json files")
        importing.add_argument("files", nargs="+")
        importing.add_argument("--publish", action="store_true", help="publish what changed")
        testing = actions.add_parser("test", help="run the policies' tests on their drafts")
        testing.add_argument("slugs", nargs="*", help="default: every policy")

    def handle(self, *args: Any, **options: Any) -> None:
        workspace = Workspace.objects.filter(slug=options["workspace"]).first()
        if workspace is None:
            raise CommandError(f"no workspace {options['workspace']!r}")
        actor = User.objects.filter(username=options["user"]).first() if options["user"] else None
        handler = {"export": self._export, "import": self._import, "test": self._test}
        handler[options["action"]](workspace, actor, options)

    def _policies(self, workspace: Workspace, slugs: list[str]) -> list[Any]:
        policies = list(selectors.policy_list(workspace=workspace))
        if slugs:
            known = {policy.slug: policy for policy in policies}
            missing = [slug for slug in slugs if slug not in known]
            if missing:
                raise CommandError(f"no policy {', '.join(missing)} in {workspace.slug}")
            policies = [known[slug] for slug in slugs]
        return policies

    def _export(self, workspace: Workspace, actor: Any, options: dict[str, Any]) -> None:
        policies = self._policies(workspace, options["slugs"])
        if options["dir"] is None:
            if len(policies) != 1:
                raise CommandError("name one policy, or give --dir for several")
            self.stdout.write(json.dumps(as_code.policy_document(policies[0]), indent=2))
            return
        folder = Path(options["dir"])
        folder.mkdir(parents=True, exist_ok=True)
        for policy in policies:
            path = folder / f"{policy.slug}{SUFFIX}"
            path.write_text(json.dumps(as_code.policy_document(policy), indent=2) + "\n")
            self.stdout.write(str(path))

    def _import(self, workspace: Workspace, actor: Any, options: dict[str, Any]) -> None:
        for name in options["files"]:
            try:
                document = json.loads(Path(name).read_text())
                imported = as_code.policy_import(
                    workspace=workspace, actor=actor, document=document, publish=options["publish"]
                )
            except (OSError, ValueError) as error:
                raise CommandError(f"{name}: cannot read it: {error}") from None
            except PolicyValidationError as error:
                lines = [f"{name}: {error.message}", *(f"  {e}" for e in error.errors)]
                raise CommandError("\n".join(lines)) from None
            row = {
                "policy": imported.policy.slug,
                "created": imported.created,
                "published": imported.version.number if imported.version else None,
            }
            self.stdout.write(json.dumps(row))

    def _test(self, workspace: Workspace, actor: Any, options: dict[str, Any]) -> None:
        failed = 0
        for policy in self._policies(workspace, options["slugs"]):
            report = as_code.policy_test_report(policy)
            failed += not report["passed"]
            self.stdout.write(json.dumps(report))
        if failed:
            self.stderr.write(f"{failed} polic{'y' if failed == 1 else 'ies'} failed their tests")
            sys.exit(1)
