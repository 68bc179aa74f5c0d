"""The block catalogue as data: what ``GET /api/blocks/`` returns and the schema snapshot
test pins. One source for the canvas, the validator, the API docs and the CLI.

Every registered version of a block is listed (oldest first), so the editor can show and
edit a node built with an older version; ``latest_version`` says which one the palette
offers."""

from __future__ import annotations

from typing import Any

from .base import Block
from .registry import registry


def block_description(block: type[Block]) -> dict[str, Any]:
    schema = block.Config.model_json_schema()
    dynamic = block.output_ports.__func__ is not Block.output_ports.__func__  # type: ignore[attr-defined]
    versions = registry.versions(block.key)
    return {
        "key": block.key,
        "version": block.version,
        "latest_version": versions[-1],
        "versions": versions,
        "title": block.title,
        "category": block.category,
        "icon": block.icon,
        "description": block.description(),
        "ports": list(block.ports),
        "dynamic_ports": dynamic,
        "config_schema": schema,
        "side_effect": block.side_effect,
        "may_wait": block.may_wait,
    }


def block_catalog() -> list[dict[str, Any]]:
    return [block_description(block) for block in registry.all_versions()]
