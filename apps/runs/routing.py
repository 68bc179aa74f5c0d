from django.urls import path

from .consumers import RunEventsConsumer

websocket_urlpatterns = [
    path("ws/w/<slug:workspace_slug>/runs/<uuid:run_id>/events/", RunEventsConsumer.as_asgi()),
]
