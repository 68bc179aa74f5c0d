"""Small builders for flow definitions used across engine tests."""

from __future__ import annotations

import itertools
from typing import Any

import psycopg

from apps.flows.services import flow_create, flow_publish


def definition(
    nodes: list[dict[str, Any]], edges: list[tuple] | None = None, name: str = "Test flow"
) -> dict:
    return {
        "schema": "flowgate/flow@1",
        "name": name,
        "nodes": nodes,
        "edges": [
            {"from": edge[0], "to": edge[1], **({"port": edge[2]} if len(edge) > 2 else {})}
            for edge in (edges or [])
        ],
    }


def node(node_id: str, block_type: str, **config: Any) -> dict[str, Any]:
    return {"id": node_id, "type": block_type, "config": config}


def published_flow(
    workspace: Any, actor: Any, flow_definition: dict[str, Any], name: str = "Test flow"
):
    flow = flow_create(workspace=workspace, actor=actor, name=name, definition=flow_definition)
    flow_publish(flow=flow, actor=actor, note="test")
    return flow


def chain(steps: int) -> dict:
    """A manual trigger followed by ``steps`` transforms in a line (``s0``, ``s1``, ...),
    each reading ``trigger.body.n``."""
    nodes = [node("start", "trigger.manual")]
    nodes += [
        node(f"s{index}", "transform.set", values={"n": f"trigger.body.n + {index}"})
        for index in range(steps)
    ]
    ids = [item["id"] for item in nodes]
    return definition(nodes, list(itertools.pairwise(ids)), name=f"Chain of {steps}")


def record_s0_elsewhere(database_url: str, run_id: Any) -> None:
    """As another worker would (whose lease took over): record ``s0`` of ``run_id`` as
    succeeded with output ``{"n": 100}``, committed on a connection of its own."""
    with psycopg.connect(database_url, autocommit=True) as other:
        other.execute(
            "INSERT INTO runs_steprun (run_id, node_id, block_type, block_version, attempt,"
            " status, output, port, meta, wait_kind, wait_reference) VALUES (%s, 's0',"
            " 'transform.set', 1, 1, 'succeeded', '{\"n\": 100}', 'out', '{}', '', '')",
            [run_id],
        )
