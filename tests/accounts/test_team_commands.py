"""The command-line side of team administration."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.accounts.models import Membership, Role, User, Workspace
from apps.audit.models import AuditEvent


def _run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_bootstrap_admin_creates_the_first_admin_and_workspace(db, monkeypatch):
    monkeypatch.setenv("FLOWGATE_ADMIN_PASSWORD", "a-long-and-unusual-passphrase-42")

    out = _run(
        "bootstrap_admin", "--username", "root", "--email", "Root@Corp.io", "--workspace", "Corp"
    )

    assert "admin of Corp (/w/corp/)" in out
    root = User.objects.get(username="root")
    assert root.email == "root@corp.io" and root.check_password("a-long-and-unusual-passphrase-42")
    assert Membership.objects.get(user=root, workspace__slug="corp").role == Role.ADMIN
    with pytest.raises(CommandError, match="exists already"):
        _run("bootstrap_admin", "--username", "root", "--email", "r@c.io", "--workspace", "X")


def test_bootstrap_admin_refuses_a_weak_password_and_creates_nothing(db, monkeypatch):
    monkeypatch.setenv("FLOWGATE_ADMIN_PASSWORD", "123")
    with pytest.raises(CommandError, match="too short"):
        _run("bootstrap_admin", "--username", "root", "--email", "r@c.io", "--workspace", "Corp")
    assert not User.objects.exists() and not Workspace.objects.exists()


def test_workspaces_are_managed_from_the_command_line(admin_user):
    created = json.loads(_run("workspaces", "--user", "ada", "create", "Finance"))
    assert created == {"slug": "finance", "name": "Finance", "archived": False, "members": 1}
    _run("workspaces", "--user", "ada", "rename", "finance", "Finance EU")
    archived = json.loads(_run("workspaces", "--user", "ada", "archive", "finance"))
    assert archived["name"] == "Finance EU" and archived["archived"] is True
    assert AuditEvent.objects.filter(workspace__slug="finance", actor=admin_user).count() == 3
    with pytest.raises(CommandError, match="no workspace"):
        _run("workspaces", "archive", "nope")


def test_members_are_invited_and_changed_from_the_command_line(workspace, admin_user, builder_user):
    invited = json.loads(
        _run("members", "--workspace", "acme", "invite", "n@x.io", "--role", "reviewer")
    )
    assert invited["emailed"] is False and "/accounts/invitations/" in invited["link"]

    _run("members", "--workspace", "acme", "--user", "ada", "role", "bea", "reviewer")
    assert Membership.objects.get(user=builder_user).role == Role.REVIEWER
    with pytest.raises(CommandError, match="last admin"):
        _run("members", "--workspace", "acme", "role", "ada", "builder")
    with pytest.raises(CommandError, match="already a member"):
        _run("members", "--workspace", "acme", "invite", "bea@example.com")
