from django.urls import path

from . import views

app_name = "audit"

urlpatterns = [
    path("", views.audit_list_view, name="list"),
    path("verify/", views.audit_verify_view, name="verify"),
    path("export.csv", views.audit_export_view, {"format": "csv"}, name="export_csv"),
    path("export.jsonl", views.audit_export_view, {"format": "jsonl"}, name="export_jsonl"),
    path("decisions/<uuid:run_id>/<str:node_id>/", views.decision_view, name="decision"),
]
