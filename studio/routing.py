"""WebSocket routes. Each app contributes its own list in ``<app>/routing.py``."""

from apps.runs.routing import websocket_urlpatterns as run_patterns
from apps.shell.routing import websocket_urlpatterns as shell_patterns

websocket_urlpatterns = [*shell_patterns, *run_patterns]
