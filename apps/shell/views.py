"""The app shell's entry points: where a signed-in person lands."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe

from apps.accounts.decorators import SignedInRequest
from apps.accounts.permissions import Capability, can
from apps.accounts.selectors import membership_get, membership_list


@login_required
def home(request: SignedInRequest) -> HttpResponse:
    """Send the user to the workspace they picked, else their first, else explain."""
    picked = request.GET.get("workspace")
    if picked:
        membership = membership_get(user=request.user, workspace_slug=picked)
        return _landing(membership)
    first = membership_list(user=request.user).first()
    if first is None:
        return render(request, "core/no_workspace.html", status=403)
    return _landing(first)


@login_required
def workspace_home(request: SignedInRequest, workspace_slug: str) -> HttpResponse:
    return _landing(membership_get(user=request.user, workspace_slug=workspace_slug))


def _landing(membership: Any) -> HttpResponse:
    """Where a member starts: builders and admins at their flows, reviewers at their inbox."""
    slug = membership.workspace.slug
    if not can(membership, Capability.EDIT_FLOWS) and can(membership, Capability.DECIDE_TASKS):
        return redirect("inbox:list", workspace_slug=slug)
    return redirect("flows:list", workspace_slug=slug)


GUIDE = settings.BASE_DIR / "docs" / "authoring.md"


@lru_cache(maxsize=1)
def _guide_html() -> str:
    """docs/authoring.md as HTML. The file is ours, not user data; raw HTML in it is off."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table").render(GUIDE.read_text())


@login_required
def authoring_guide(request: HttpRequest) -> HttpResponse:
    """The authoring guide (docs/authoring.md), linked from the editor's toolbar."""
    return render(request, "core/guide.html", {"guide": mark_safe(_guide_html())})  # noqa: S308
