from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.accounts.decorators import workspace_view
from apps.accounts.permissions import Capability


@workspace_view(Capability.VIEW_FLOWS)
def section_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "core/empty_section.html",
        {
            "title": "Flows",
            "description": "Your automation flows will be listed here: build one on the canvas from connector, model, policy and review blocks, or start from a template.",
        },
    )
