"""Template tags for the app shell."""

from __future__ import annotations

from django import template
from django.urls import reverse

from apps.accounts.permissions import can
from apps.shell.navigation import MAIN_NAVIGATION

register = template.Library()


@register.inclusion_tag("core/partials/navigation.html", takes_context=True)
def main_navigation(context: template.Context) -> dict[str, object]:
    request = context["request"]
    membership = getattr(request, "membership", None)
    if membership is None:
        return {"items": [], "workspace": None}
    items = []
    for item in MAIN_NAVIGATION:
        if not can(membership, item.capability):
            continue
        url = reverse(item.url_name, kwargs={"workspace_slug": membership.workspace.slug})
        items.append({"item": item, "url": url, "active": request.path.startswith(url)})
    return {"items": items, "workspace": membership.workspace}
