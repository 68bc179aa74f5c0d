from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.accounts.decorators import workspace_view
from apps.accounts.permissions import Capability


@workspace_view(Capability.VIEW_AUDIT)
def section_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "core/empty_section.html",
        {
            "title": "Audit trail",
            "description": "Every action and decision (who, what, when, with which model and policy version) will be recorded here in a tamper-evident trail.",
        },
    )
