from django.urls import path

from . import views

app_name = "runs"

urlpatterns = [
    path("", views.run_list_view, name="list"),
    path("dead-letter/", views.dead_letter_view, name="dead_letter"),
    path("dead-letter/bulk/", views.bulk_action_view, name="bulk"),
    path("start/<uuid:flow_id>/", views.run_start_view, name="start"),
    path("<uuid:run_id>/", views.run_detail_view, name="detail"),
    path("<uuid:run_id>/cancel/", views.run_cancel_view, name="cancel"),
    path("<uuid:run_id>/retry/", views.run_retry_view, name="retry"),
    path("<uuid:run_id>/rerun/", views.run_rerun_view, name="rerun"),
]
