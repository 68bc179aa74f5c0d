from django.urls import path

from . import api

urlpatterns = [
    path("policies/", api.PolicyListApi.as_view(), name="api-policies"),
    path("policies/<slug:policy_slug>/", api.PolicyDocumentApi.as_view(), name="api-policy"),
    path("policies/<slug:policy_slug>/test/", api.PolicyTestApi.as_view(), name="api-policy-test"),
]
