"""A structural diff of two flow definitions: nodes and edges added, removed, changed."""

from __future__ import annotations

from typing import Any


def _flatten(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{path}.{key}" if path else str(key)))
        return flat
    return {path: value}


def _edge_key(edge: dict[str, Any]) -> str:
    port = edge.get("port")
    return f"{edge.get('from')} →{' [' + port + ']' if port else ''} {edge.get('to')}"


def definition_diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    old_nodes = {node["id"]: node for node in before.get("nodes", []) if isinstance(node, dict)}
    new_nodes = {node["id"]: node for node in after.get("nodes", []) if isinstance(node, dict)}
    changed = []
    for node_id in sorted(old_nodes.keys() & new_nodes.keys()):
        old_flat = _flatten({k: v for k, v in old_nodes[node_id].items() if k != "id"})
        new_flat = _flatten({k: v for k, v in new_nodes[node_id].items() if k != "id"})
        changes = [
            {"path": path, "before": old_flat.get(path), "after": new_flat.get(path)}
            for path in sorted(old_flat.keys() | new_flat.keys())
            if old_flat.get(path) != new_flat.get(path)
        ]
        if changes:
            changed.append({"id": node_id, "changes": changes})
    old_edges = {_edge_key(edge) for edge in before.get("edges", [])}
    new_edges = {_edge_key(edge) for edge in after.get("edges", [])}
    return {
        "nodes": {
            "added": sorted(new_nodes.keys() - old_nodes.keys()),
            "removed": sorted(old_nodes.keys() - new_nodes.keys()),
            "changed": changed,
        },
        "edges": {"added": sorted(new_edges - old_edges), "removed": sorted(old_edges - new_edges)},
    }
