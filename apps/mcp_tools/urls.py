from django.urls import path

from . import views

app_name = "mcp_tools"

urlpatterns = [
    path("", views.tool_list_view, name="list"),
    path("flows/<uuid:flow_id>/", views.flow_tool_view, name="flow"),
]
