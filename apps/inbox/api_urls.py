from django.urls import path

from . import api

urlpatterns = [
    path("tasks/", api.TaskListApi.as_view(), name="api-tasks"),
    path("tasks/counts/", api.TaskCountsApi.as_view(), name="api-task-counts"),
    path("tasks/<uuid:task_id>/", api.TaskDetailApi.as_view(), name="api-task"),
    path("tasks/<uuid:task_id>/decide/", api.TaskDecideApi.as_view(), name="api-task-decide"),
    path(
        "tasks/<uuid:task_id>/claim/",
        api.TaskClaimApi.as_view(action="claim"),
        name="api-task-claim",
    ),
    path(
        "tasks/<uuid:task_id>/release/",
        api.TaskClaimApi.as_view(action="release"),
        name="api-task-release",
    ),
]
