from django.urls import path

from .consumers import WorkspaceEventsConsumer

websocket_urlpatterns = [
    path("ws/w/<slug:workspace_slug>/events/", WorkspaceEventsConsumer.as_asgi()),
]
