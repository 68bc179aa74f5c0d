"""The templates gallery: ready-made flows shipped as ``gallery/*.flow.json`` files."""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from rest_framework.exceptions import NotFound

from apps.blocks.registry import registry

GALLERY_DIR = Path(__file__).parent / "gallery"


@lru_cache(maxsize=1)
def _templates() -> dict[str, dict[str, Any]]:
    return {
        path.name.removesuffix(".flow.json"): json.loads(path.read_text())
        for path in sorted(GALLERY_DIR.glob("*.flow.json"))
    }


def template_list() -> list[dict[str, Any]]:
    listing = []
    for key, definition in _templates().items():
        missing = sorted(
            {node["type"] for node in definition["nodes"] if registry.get(node["type"]) is None}
        )
        listing.append(
            {
                "key": key,
                "name": definition["name"],
                "description": definition.get("description", ""),
                "available": not missing,
                "missing_blocks": missing,
            }
        )
    return listing


def template_definition(key: str) -> dict[str, Any]:
    definition = _templates().get(key)
    if definition is None:
        raise NotFound(f"No template {key!r}.")
    return copy.deepcopy(definition)
