"""WebSocket routes. Each app contributes its own list in ``<app>/routing.py``."""

from apps.core.routing import websocket_urlpatterns as core_patterns
from apps.runs.routing import websocket_urlpatterns as run_patterns

websocket_urlpatterns = [*core_patterns, *run_patterns]
