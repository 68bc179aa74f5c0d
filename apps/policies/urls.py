from django.urls import path

from . import views

app_name = "policies"

urlpatterns = [
    path("", views.policy_list_view, name="list"),
    path("new/", views.policy_create_view, name="create"),
    path("decisions/", views.evaluation_list_view, name="evaluations"),
    path("<slug:policy_slug>/", views.policy_detail_view, name="detail"),
    path("<slug:policy_slug>/draft/", views.draft_save_view, name="draft_save"),
    path("<slug:policy_slug>/publish/", views.publish_view, name="publish"),
    path("<slug:policy_slug>/tests/", views.test_case_create_view, name="test_create"),
    path("<slug:policy_slug>/tests/run/", views.tests_run_view, name="tests_run"),
    path(
        "<slug:policy_slug>/tests/<uuid:test_id>/delete/",
        views.test_case_delete_view,
        name="test_delete",
    ),
    path("<slug:policy_slug>/playground/", views.playground_view, name="playground"),
    path("<slug:policy_slug>/versions/<int:number>/", views.version_detail_view, name="version"),
    path(
        "<slug:policy_slug>/versions/<int:number>/rollback/", views.rollback_view, name="rollback"
    ),
    path("<slug:policy_slug>/diff/", views.diff_view, name="diff"),
]
