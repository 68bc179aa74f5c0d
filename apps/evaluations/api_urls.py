from django.urls import path

from . import api

urlpatterns = [
    path("flows/<uuid:flow_id>/eval-cases/", api.EvalCaseListApi.as_view(), name="api-eval-cases"),
    path(
        "flows/<uuid:flow_id>/eval-cases/<uuid:case_id>/",
        api.EvalCaseApi.as_view(),
        name="api-eval-case",
    ),
    path(
        "flows/<uuid:flow_id>/evaluations/",
        api.EvaluationListApi.as_view(),
        name="api-evaluations",
    ),
    path(
        "flows/<uuid:flow_id>/evaluations/<uuid:evaluation_id>/",
        api.EvaluationApi.as_view(),
        name="api-evaluation",
    ),
]
