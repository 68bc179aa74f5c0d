from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.accounts.decorators import workspace_view
from apps.accounts.permissions import Capability


@workspace_view(Capability.VIEW_MODELS)
def section_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "core/empty_section.html",
        {
            "title": "Models",
            "description": "Registered models from MLflow will be listed here with their versions, metrics and aliases, ready to promote or roll back.",
        },
    )
