from django.urls import path

from . import api

urlpatterns = [
    path("agent-tools/", api.AgentToolCatalogApi.as_view(), name="api-agent-tools"),
    path("models/promotions/", api.PromotionListApi.as_view(), name="api-promotions"),
    path(
        "models/promotions/<uuid:promotion_id>/",
        api.PromotionDetailApi.as_view(),
        name="api-promotion",
    ),
    path(
        "models/promotions/<uuid:promotion_id>/approve/",
        api.PromotionDecideApi.as_view(action="approve"),
        name="api-promotion-approve",
    ),
    path(
        "models/promotions/<uuid:promotion_id>/reject/",
        api.PromotionDecideApi.as_view(action="reject"),
        name="api-promotion-reject",
    ),
]
