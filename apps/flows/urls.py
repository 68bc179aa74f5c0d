from django.urls import path

from . import request_views, views

app_name = "flows"

urlpatterns = [
    path("", views.flow_list_view, name="list"),
    path("new/", views.flow_create_view, name="create"),
    path("import/", views.flow_import_view, name="import"),
    path("<uuid:flow_id>/", views.flow_editor_view, name="editor"),
    path("<uuid:flow_id>/duplicate/", views.flow_duplicate_view, name="duplicate"),
    path("<uuid:flow_id>/archive/", views.flow_archive_view, name="archive"),
    path("<uuid:flow_id>/restore/", views.flow_restore_view, name="restore"),
    path("<uuid:flow_id>/webhook/", views.flow_webhook_view, name="webhook"),
    path("<uuid:flow_id>/request-publish/", request_views.request_create, name="request_publish"),
    path("requests/<uuid:request_id>/", request_views.request_detail, name="request"),
    path("requests/<uuid:request_id>/decide/", request_views.request_decide, name="request_decide"),
]
