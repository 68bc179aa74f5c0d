"""OpenAPI generation for Flowgate's API views.

Most views are plain ``APIView`` subclasses that validate input with a nested serializer and
answer with a dict built by the app (one place decides the response shape). drf-spectacular
cannot guess either, so a view may name the serializer it validates its body with::

    request_serializer = CreateSerializer        # or {"POST": ..., "PATCH": ...}

Views that say nothing are documented as taking and returning a JSON object.
"""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes

_BODY_METHODS = {"POST", "PUT", "PATCH"}


class FlowgateAutoSchema(AutoSchema):
    def _view_attribute(self, name: str) -> Any:
        value = getattr(self.view, name, None)
        if isinstance(value, dict):
            return value.get(self.method)
        return value

    def _has_generic_serializer(self) -> bool:
        return hasattr(self.view, "get_serializer") or hasattr(self.view, "serializer_class")

    def get_request_serializer(self) -> Any:
        declared = self._view_attribute("request_serializer")
        if declared is not None:
            return declared
        if self._has_generic_serializer():
            return super().get_request_serializer()
        return OpenApiTypes.OBJECT if self.method in _BODY_METHODS else None

    def get_response_serializers(self) -> Any:
        if self._has_generic_serializer():
            return super().get_response_serializers()
        return OpenApiTypes.OBJECT

    def get_operation_id(self) -> str:
        """``flow_list_get``, ``run_action_post``: from the view's class name, which is
        unique, rather than from the path, which collides for list and detail views."""
        name = type(self.view).__name__.removesuffix("Api").removesuffix("View")
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
        # One view class serving several paths (``as_view(action="retry")``) names the action.
        action = getattr(self.view, "action", None)
        prefix = f"{snake}_{action}" if isinstance(action, str) else snake
        return f"{prefix}_{self.method.lower()}"


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apps.accounts.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A workspace API token (Settings → API tokens): `Bearer fg_...`.",
        }
