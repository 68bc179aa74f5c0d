"""Template context for the app shell: the current workspace, role and navigation."""

from __future__ import annotations

from django.http import HttpRequest

from .permissions import ROLE_CAPABILITIES
from .selectors import membership_list


def workspace(request: HttpRequest) -> dict[str, object]:
    membership = getattr(request, "membership", None)
    if membership is None or not request.user.is_authenticated:
        return {}
    return {
        "workspace": membership.workspace,
        "membership": membership,
        "capabilities": {str(c) for c in ROLE_CAPABILITIES.get(membership.role, frozenset())},
        "memberships": membership_list(user=request.user),
    }
