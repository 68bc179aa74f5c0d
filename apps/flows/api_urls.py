from django.urls import path

from . import api, request_api

urlpatterns = [
    path("flows/", api.FlowListApi.as_view(), name="api-flows"),
    path("flows/import/", api.FlowImportApi.as_view(), name="api-flow-import"),
    path("templates/", api.TemplateListApi.as_view(), name="api-templates"),
    path("flows/<uuid:flow_id>/", api.FlowDetailApi.as_view(), name="api-flow"),
    path("flows/<uuid:flow_id>/draft/", api.FlowDraftApi.as_view(), name="api-flow-draft"),
    path("flows/<uuid:flow_id>/validate/", api.FlowValidateApi.as_view(), name="api-flow-validate"),
    path("flows/<uuid:flow_id>/publish/", api.FlowPublishApi.as_view(), name="api-flow-publish"),
    path("flows/<uuid:flow_id>/rollback/", api.FlowRollbackApi.as_view(), name="api-flow-rollback"),
    path(
        "flows/<uuid:flow_id>/versions/", api.FlowVersionListApi.as_view(), name="api-flow-versions"
    ),
    path(
        "flows/<uuid:flow_id>/versions/<int:number>/",
        api.FlowVersionDetailApi.as_view(),
        name="api-flow-version",
    ),
    path("flows/<uuid:flow_id>/diff/", api.FlowDiffApi.as_view(), name="api-flow-diff"),
    path(
        "flows/<uuid:flow_id>/duplicate/", api.FlowDuplicateApi.as_view(), name="api-flow-duplicate"
    ),
    path("flows/<uuid:flow_id>/archive/", api.FlowArchiveApi.as_view(), name="api-flow-archive"),
    path(
        "flows/<uuid:flow_id>/webhook-secret/",
        api.FlowWebhookSecretApi.as_view(),
        name="api-flow-webhook-secret",
    ),
    path("flows/<uuid:flow_id>/export/", api.FlowExportApi.as_view(), name="api-flow-export"),
    path(
        "flows/<uuid:flow_id>/publish-requests/",
        request_api.PublishRequestListApi.as_view(),
        name="api-flow-publish-requests",
    ),
    path(
        "flows/<uuid:flow_id>/publish-requests/<uuid:request_id>/decide/",
        request_api.PublishRequestDecideApi.as_view(),
        name="api-flow-publish-request-decide",
    ),
]
