from django.urls import path

from . import views

app_name = "inbox"

urlpatterns = [
    path("", views.task_list, name="list"),
    path("bulk/", views.task_bulk_decide, name="bulk"),
    path("<uuid:task_id>/", views.task_detail, name="detail"),
    path("<uuid:task_id>/decide/", views.task_decide, name="decide"),
    path("<uuid:task_id>/claim/", views.task_claim, name="claim"),
    path("<uuid:task_id>/release/", views.task_claim, {"release": True}, name="release"),
]
