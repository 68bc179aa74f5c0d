from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.accounts.decorators import workspace_view
from apps.accounts.permissions import Capability


@workspace_view(Capability.VIEW_RUNS)
def section_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "core/empty_section.html",
        {
            "title": "Runs",
            "description": "Every run of every flow will appear here with its status, steps and timings, and failed runs in a dead-letter list you can retry.",
        },
    )
