from django.urls import path

from . import views

app_name = "evaluations"

urlpatterns = [
    path("flows/<uuid:flow_id>/", views.evaluate_view, name="flow"),
    path("flows/<uuid:flow_id>/cases/", views.case_add_view, name="case_add"),
    path(
        "flows/<uuid:flow_id>/cases/<uuid:case_id>/delete/",
        views.case_delete_view,
        name="case_delete",
    ),
    path("flows/<uuid:flow_id>/start/", views.evaluation_start_view, name="start"),
    path("flows/<uuid:flow_id>/<uuid:evaluation_id>/", views.evaluation_view, name="evaluation"),
]
