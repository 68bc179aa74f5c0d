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
            "title": "Inbox",
            "description": "Human-review tasks created by your flows will arrive here for reviewers to approve, reject or send back.",
        },
    )
