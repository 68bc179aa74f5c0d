from django.urls import path

from . import views

app_name = "mlmodels"

MODEL = "<str:model_name>"

urlpatterns = [
    path("", views.model_list_view, name="list"),
    path(f"{MODEL}/", views.model_detail_view, name="detail"),
    path(f"{MODEL}/rollback/", views.rollback_view, name="rollback"),
    path(f"{MODEL}/versions/<int:version>/", views.version_detail_view, name="version"),
    path(
        f"{MODEL}/versions/<int:version>/promote/",
        views.request_promotion_view,
        name="request_promotion",
    ),
    path(
        "promotions/<uuid:promotion_id>/approve/",
        views.decide_promotion_view,
        {"decision": "approve"},
        name="approve_promotion",
    ),
    path(
        "promotions/<uuid:promotion_id>/reject/",
        views.decide_promotion_view,
        {"decision": "reject"},
        name="reject_promotion",
    ),
]
