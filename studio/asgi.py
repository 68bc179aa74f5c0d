"""ASGI entry point: HTTP through Django, WebSockets through Channels."""

import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings.base")

from studio.env import ConfigurationError

try:
    from studio.handlers import http_application

    django_application = http_application()
    from apps.mcp_tools.server import with_mcp  # after Django is set up: it reads models
except ConfigurationError as error:
    sys.stderr.write(f"flowgate: configuration error: {error}\n")
    sys.exit(2)

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator

from studio.long_lived import freeze_start_up_objects
from studio.routing import websocket_urlpatterns

application = ProtocolTypeRouter(
    {
        # /mcp: published flows as MCP tools for outside agents (apps/mcp_tools/server.py).
        "http": with_mcp(django_application),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
# Everything imported and built so far lives as long as the process: out of the garbage
# collector's walks (studio/long_lived.py).
freeze_start_up_objects()
