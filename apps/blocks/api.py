"""The block catalogue and port resolution for the canvas."""

from __future__ import annotations

from pydantic import ValidationError
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from .catalog import block_catalog
from .registry import registry


class BlockListApi(APIView):
    """Every registered block type with its config JSON Schema and ports."""

    def get(self, request):  # type: ignore[no-untyped-def]
        return Response(block_catalog())


class BlockPortsApi(APIView):
    """The output ports a block has with a given config (switch cases, policy routes)."""

    class InputSerializer(serializers.Serializer):
        type = serializers.CharField()
        config = serializers.DictField(required=False, default=dict)

    def post(self, request):  # type: ignore[no-untyped-def]
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        block = registry.get(data.validated_data["type"])
        if block is None:
            raise serializers.ValidationError({"type": ["unknown block type"]})
        try:
            config = block.Config.model_validate(data.validated_data["config"])
        except ValidationError:
            return Response({"ports": list(block.ports), "config_valid": False})
        return Response({"ports": list(block.output_ports(config)), "config_valid": True})
