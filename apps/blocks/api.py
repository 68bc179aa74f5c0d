"""The block catalogue, port resolution and node upgrades for the canvas."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .base import Block
from .catalog import block_catalog
from .registry import RegistryError, registry


class BlockListApi(APIView):
    """Every registered block type and version with its config JSON Schema and ports."""

    def get(self, request: Request) -> Response:
        return Response(block_catalog())


class BlockInputSerializer(serializers.Serializer[Any]):
    type = serializers.CharField()
    version = serializers.IntegerField(min_value=1, required=False, default=None)
    config = serializers.DictField(required=False, default=dict)


def _block(data: dict[str, Any]) -> type[Block]:
    block = registry.get(data["type"], data["version"])
    if block is None:
        raise serializers.ValidationError({"type": ["unknown block type or version"]})
    return block


class BlockPortsApi(APIView):
    """The output ports a block has with a given config (switch cases, policy routes)."""

    def post(self, request: Request) -> Response:
        data = BlockInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        block = _block(data.validated_data)
        try:
            config = block.Config.model_validate(data.validated_data["config"])
        except ValidationError:
            return Response({"ports": list(block.ports), "config_valid": False})
        return Response({"ports": list(block.output_ports(config)), "config_valid": True})


class BlockUpgradeApi(APIView):
    """A node's config carried to its block's latest version by each version's migration
    (the editor's "upgrade this node"). Nothing is saved: the editor applies the answer."""

    def post(self, request: Request) -> Response:
        data = BlockInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key, version = data.validated_data["type"], data.validated_data["version"] or 1
        try:
            upgraded, config = registry.upgrade_config(key, version, data.validated_data["config"])
        except RegistryError as error:
            raise serializers.ValidationError({"version": [str(error)]}) from None
        block = _block({"type": key, "version": upgraded})
        try:
            block.Config.model_validate(config)
            problems: list[str] = []
        except ValidationError as error:
            problems = [
                f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}"
                for item in error.errors()
            ]
        return Response({"type": key, "version": upgraded, "config": config, "problems": problems})
