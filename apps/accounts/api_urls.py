"""API token endpoints, under ``/api/w/<workspace_slug>/``."""

from django.urls import path

from . import api

urlpatterns = [
    path("tokens/", api.ApiTokenListApi.as_view(), name="api-tokens"),
    path("tokens/<uuid:token_id>/", api.ApiTokenDetailApi.as_view(), name="api-token"),
]
