from django.urls import path

from . import api

urlpatterns = [
    path("flows/<uuid:flow_id>/runs/", api.StartRunApi.as_view(), name="api-flow-start-run"),
    path("flows/<uuid:flow_id>/test-runs/", api.TestRunApi.as_view(), name="api-flow-test-run"),
    path("runs/", api.RunListApi.as_view(), name="api-runs"),
    path("runs/bulk/", api.BulkRunActionApi.as_view(), name="api-runs-bulk"),
    path("runs/<uuid:run_id>/", api.RunDetailApi.as_view(), name="api-run"),
    path(
        "runs/<uuid:run_id>/cancel/",
        api.RunActionApi.as_view(action="cancel"),
        name="api-run-cancel",
    ),
    path(
        "runs/<uuid:run_id>/retry/", api.RunActionApi.as_view(action="retry"), name="api-run-retry"
    ),
    path(
        "runs/<uuid:run_id>/rerun/", api.RunActionApi.as_view(action="rerun"), name="api-run-rerun"
    ),
    path("expressions/preview/", api.ExpressionPreviewApi.as_view(), name="api-expression-preview"),
]
