"""The flow interchange format (``flowgate/flow@1``) as a typed, read-only graph.

``validate_definition`` lists every problem in a definition; ``FlowGraph.parse`` turns a
valid one into nodes with parsed block configs and the edges between them. Pure: no ORM,
so the engine, the validator, the importer and the CLI share it.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import re
from collections import defaultdict, deque
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from apps.blocks.base import Block, BlockConfig
from apps.blocks.expressions import ExpressionError, compile_expression, template_expressions
from apps.blocks.registry import registry

from .node_settings import NodeSettings

SCHEMA = "flowgate/flow@1"
NODE_ID = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
MAX_NODES = 500
NODE_KEYS = {"id", "type", "version", "config", "retry", "timeout_seconds", "label", "notes"}
# A node without a version was written before blocks had versions: it means version 1.
UNVERSIONED = 1
NODE_SETTINGS = ("retry", "timeout_seconds")


class FlowConcurrency(BaseModel):
    """A definition's optional ``concurrency`` object, enforced by the engine: ``limit``
    bounds the flow's runs running at once across every worker (its calls in flight per
    worker too); calls of a higher ``priority`` flow start first when slots are short."""

    model_config = ConfigDict(extra="forbid")

    limit: int | None = Field(default=None, ge=1, le=10_000)
    priority: int = Field(default=0, ge=-100, le=100)


@dataclass(frozen=True)
class Problem:
    message: str
    node: str | None = None
    field: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"node": self.node, "field": self.field, "message": self.message}

    def __str__(self) -> str:
        """As a person reads it: ``node field: message`` (what the editor shows)."""
        where = " ".join(part for part in (self.node, self.field) if part)
        return f"{where}: {self.message}" if where else self.message


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    port: str


@dataclass(frozen=True)
class Node:
    id: str
    key: str  # the block's key (the flow file's "type")
    block: builtins.type[Block]
    config: BlockConfig
    raw_config: dict[str, Any]
    settings: dict[str, Any] = field(default_factory=dict)  # retry / timeout_seconds

    @property
    def type(self) -> str:
        """The block key under its flow-file name, for callers written before ``key``."""
        return self.key

    @cached_property
    def run_settings(self) -> NodeSettings:
        """Its retry and timeout settings over its block's defaults. A parsed node never
        changes (graphs are cached per version), so they are validated once, not per step."""
        return NodeSettings.for_node(self)


@dataclass(frozen=True)
class FlowGraph:
    nodes: dict[str, Node]
    edges: tuple[Edge, ...]
    trigger: str
    incoming: dict[str, tuple[Edge, ...]] = field(default_factory=dict)
    outgoing: dict[str, tuple[Edge, ...]] = field(default_factory=dict)
    # The flow's ``concurrency`` object: calls in flight at once, and its turn among others.
    concurrency: int | None = None
    priority: int = 0

    @classmethod
    def parse(cls, definition: dict[str, Any]) -> FlowGraph:
        """Parse a definition that ``validate_definition`` accepted."""
        return _parse_cached(definition_digest(definition), json.dumps(definition))

    def order(self) -> tuple[str, ...]:
        """Node ids in topological order (the graph is acyclic once validated)."""
        return self._order

    @cached_property
    def _order(self) -> tuple[str, ...]:
        # A parsed graph never changes: sorted once, where the engine asks on every pass.
        return tuple(_topological_order(set(self.nodes), self.edges) or self.nodes)


@lru_cache(maxsize=256)
def _parse_cached(digest: str, serialized: str) -> FlowGraph:
    definition = json.loads(serialized)
    nodes = {}
    for raw in definition["nodes"]:
        block = registry.get(raw["type"], raw.get("version", UNVERSIONED))
        assert block is not None, f"unknown block {raw['type']} v{raw.get('version')}"
        config = block.Config.model_validate(raw.get("config") or {})
        node_settings = {key: raw[key] for key in NODE_SETTINGS if key in raw}
        nodes[raw["id"]] = Node(
            raw["id"], raw["type"], block, config, raw.get("config") or {}, node_settings
        )
    edges = tuple(_normalised_edge(_edge(raw), nodes) for raw in definition.get("edges", []))
    incoming: dict[str, list[Edge]] = defaultdict(list)
    outgoing: dict[str, list[Edge]] = defaultdict(list)
    for edge in edges:
        incoming[edge.target].append(edge)
        outgoing[edge.source].append(edge)
    trigger = next(node.id for node in nodes.values() if node.block.category == "trigger")
    concurrency = FlowConcurrency.model_validate(definition.get("concurrency") or {})
    return FlowGraph(
        nodes=nodes,
        edges=edges,
        trigger=trigger,
        incoming={key: tuple(value) for key, value in incoming.items()},
        outgoing={key: tuple(value) for key, value in outgoing.items()},
        concurrency=concurrency.limit,
        priority=concurrency.priority,
    )


def _normalised_edge(edge: Edge, nodes: dict[str, Node]) -> Edge:
    if edge.port:
        return edge
    source = nodes[edge.source]
    return Edge(edge.source, edge.target, source.block.output_ports(source.config)[0])


def _edge(raw: dict[str, Any]) -> Edge:
    return Edge(raw["from"], raw["to"], raw.get("port") or "")


IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def fields_mentioned(definition: Any, names: frozenset[str]) -> list[str]:
    """Which of ``names`` (lower-case field names) the definition mentions: as a key of any
    object, or as a name in any string (a CEL path such as ``trigger.body.email``, a
    template, a column list). Over-matching a word errs towards asking an admin."""
    found: set[str] = set()
    pending = [definition]
    while pending and len(found) < len(names):
        value = pending.pop()
        if isinstance(value, dict):
            found.update(
                key.lower() for key in value if isinstance(key, str) and key.lower() in names
            )
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str):
            found.update(
                word.lower() for word in IDENTIFIER.findall(value) if word.lower() in names
            )
    return sorted(found)


def definition_digest(definition: dict[str, Any]) -> str:
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def stamp_block_versions(definition: Any, *, version: int | None = None) -> Any:
    """``definition`` with a ``version`` on every node that has none: ``version``, or the
    block's latest when None (a node saved from the editor or the API was built with the
    latest; an imported file without versions predates them and gets 1). Nodes that name a
    version keep it, so published flows keep running what they were built with."""
    if not isinstance(definition, dict) or not isinstance(definition.get("nodes"), list):
        return definition
    nodes = []
    for raw in definition["nodes"]:
        if isinstance(raw, dict) and "version" not in raw and registry.get(str(raw.get("type"))):
            latest = registry.versions(str(raw.get("type")))[-1]
            raw = {**raw, "version": version if version is not None else latest}
        nodes.append(raw)
    return {**definition, "nodes": nodes}


# --- validation ------------------------------------------------------------------------
def validate_definition(definition: Any, *, workspace_id: Any = None) -> list[Problem]:
    """Every problem in ``definition``, each tied to a node and field where possible; with
    ``workspace_id``, also those that depend on the workspace (``Block.workspace_problems``)."""
    if not isinstance(definition, dict):
        return [Problem("a flow definition must be a JSON object")]
    problems: list[Problem] = []
    if definition.get("schema") != SCHEMA:
        problems.append(Problem(f"'schema' must be {SCHEMA!r}", field="schema"))
    raw_nodes = definition.get("nodes")
    raw_edges = definition.get("edges", [])
    if not isinstance(raw_nodes, list) or not raw_nodes:
        return [*problems, Problem("a flow needs at least one node", field="nodes")]
    if not isinstance(raw_edges, list):
        return [*problems, Problem("'edges' must be a list", field="edges")]
    if len(raw_nodes) > MAX_NODES:
        return [*problems, Problem(f"a flow may have at most {MAX_NODES} nodes", field="nodes")]
    nodes, node_problems = _validate_nodes(raw_nodes)
    problems += node_problems
    if workspace_id is not None:
        problems += _workspace_problems(nodes, workspace_id)
    edges, edge_problems = _validate_edges(raw_edges, nodes)
    problems += edge_problems
    problems += _validate_shape(nodes, edges)
    return problems + _concurrency_problems(definition.get("concurrency"))


def _concurrency_problems(raw: Any) -> list[Problem]:
    if raw is None:
        return []
    if not isinstance(raw, dict):
        return [Problem("'concurrency' must be an object", field="concurrency")]
    try:
        FlowConcurrency.model_validate(raw)
    except ValidationError as error:
        return [
            Problem(
                "is not a concurrency setting (limit, priority)"
                if item["type"] == "extra_forbidden"
                else _pydantic_message(item),
                field=".".join(["concurrency", *(str(part) for part in item["loc"])]),
            )
            for item in error.errors()
        ]
    return []


def _validate_nodes(
    raw_nodes: list[Any],
) -> tuple[dict[str, tuple[type[Block], BlockConfig | None]], list[Problem]]:
    problems: list[Problem] = []
    nodes: dict[str, tuple[type[Block], BlockConfig | None]] = {}
    for index, raw in enumerate(raw_nodes):
        if not isinstance(raw, dict):
            problems.append(Problem(f"node #{index + 1} must be an object", field="nodes"))
            continue
        node_id = raw.get("id")
        if not isinstance(node_id, str) or not NODE_ID.match(node_id):
            problems.append(
                Problem(
                    f"node #{index + 1} needs an id of lower-case letters, digits and _ "
                    "starting with a letter",
                    node=str(node_id) if node_id else None,
                    field="id",
                )
            )
            continue
        if node_id in nodes:
            problems.append(
                Problem(
                    f"the id {node_id!r} is used by more than one node", node=node_id, field="id"
                )
            )
            continue
        block, block_problem = _node_block(node_id, raw)
        if block is None:
            problems.append(block_problem)
            continue
        config, config_problems = _validate_config(node_id, block, raw.get("config") or {})
        problems += config_problems + _node_setting_problems(node_id, raw)
        nodes[node_id] = (block, config)
    return nodes, problems


def _workspace_problems(
    nodes: dict[str, tuple[type[Block], BlockConfig | None]], workspace_id: Any
) -> list[Problem]:
    def service(name: str) -> Any:
        factory = registry.service_factory(name)
        return factory(workspace_id) if factory else None

    return [
        Problem(message, node=node_id, field=field)
        for node_id, (block, config) in nodes.items()
        if config is not None
        for field, message in block.workspace_problems(config, service)
    ]


def _node_block(node_id: str, raw: dict[str, Any]) -> tuple[type[Block] | None, Problem]:
    key, version = str(raw.get("type")), raw.get("version", UNVERSIONED)
    versions = registry.versions(key)
    if not versions:
        return None, Problem(f"unknown block type {raw.get('type')!r}", node=node_id, field="type")
    if isinstance(version, bool) or not isinstance(version, int) or version not in versions:
        listed = ", ".join(str(number) for number in versions)
        return None, Problem(
            f"{key} has no version {version!r} (versions: {listed})", node=node_id, field="version"
        )
    return registry.get(key, version), Problem("")


def _node_setting_problems(node_id: str, raw: dict[str, Any]) -> list[Problem]:
    problems = [
        Problem(f"unknown node key {key!r}", node=node_id, field=key)
        for key in sorted(set(raw) - NODE_KEYS)
    ]
    try:
        NodeSettings.model_validate(
            {
                **(raw.get("retry") or {}),
                **({"timeout_seconds": raw["timeout_seconds"]} if "timeout_seconds" in raw else {}),
            }
        )
    except ValidationError as error:
        problems += [
            Problem(
                _pydantic_message(item), node=node_id, field=".".join(str(p) for p in item["loc"])
            )
            for item in error.errors()
        ]
    return problems


def _validate_config(
    node_id: str, block: type[Block], raw_config: Any
) -> tuple[BlockConfig | None, list[Problem]]:
    if not isinstance(raw_config, dict):
        return None, [Problem("config must be an object", node=node_id, field="config")]
    try:
        config = block.Config.model_validate(raw_config)
    except ValidationError as error:
        return None, [
            Problem(
                _pydantic_message(item),
                node=node_id,
                field=".".join(str(part) for part in item["loc"]) or None,
            )
            for item in error.errors()
        ]
    return config, _expression_problems(node_id, block, raw_config)


def _pydantic_message(item: Any) -> str:
    if item["type"] == "missing":
        return "is required"
    if item["type"] == "extra_forbidden":
        return "is not a setting of this block"
    return str(item["msg"])


def _expression_problems(
    node_id: str, block: type[Block], raw_config: dict[str, Any]
) -> list[Problem]:
    problems = []
    for path, kind, source in _expression_fields(block.Config.model_json_schema(), raw_config):
        sources = [source] if kind == "cel" else template_expressions(source)
        for expression in sources:
            try:
                compile_expression(expression)
            except ExpressionError as error:
                problems.append(Problem(error.reason, node=node_id, field=path))
    return problems


def _expression_fields(
    schema: dict[str, Any], value: Any, path: str = "", defs: dict | None = None
):
    """Yield (path, format, source) for every CEL string in ``value`` per ``schema``."""
    defs = defs if defs is not None else schema.get("$defs", {})
    if "$ref" in schema:
        schema = defs.get(schema["$ref"].split("/")[-1], {})
    for option in schema.get("anyOf", []):
        yield from _expression_fields(option, value, path, defs)
    kind = schema.get("format")
    if kind in ("cel", "cel-template") and isinstance(value, str):
        yield path, kind, value
    elif isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            sub = properties.get(key) or (extra if isinstance(extra, dict) else None)
            if sub:
                yield from _expression_fields(sub, item, f"{path}.{key}".lstrip("."), defs)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            yield from _expression_fields(schema["items"], item, f"{path}[{index}]", defs)


def _validate_edges(
    raw_edges: list[Any], nodes: dict[str, tuple[type[Block], BlockConfig | None]]
) -> tuple[list[Edge], list[Problem]]:
    problems: list[Problem] = []
    edges: list[Edge] = []
    seen = set()
    for index, raw in enumerate(raw_edges):
        if (
            not isinstance(raw, dict)
            or not isinstance(raw.get("from"), str)
            or not isinstance(raw.get("to"), str)
        ):
            problems.append(
                Problem(f"edge #{index + 1} needs 'from' and 'to' node ids", field="edges")
            )
            continue
        edge = _edge(raw)
        dangling = [end for end in (edge.source, edge.target) if end not in nodes]
        if dangling:
            problems.append(
                Problem(
                    f"edge {edge.source} → {edge.target} refers to a node that does not exist: "
                    + ", ".join(dangling),
                    node=edge.source if edge.source in nodes else None,
                    field="edges",
                )
            )
            continue
        block, config = nodes[edge.source]
        ports = block.output_ports(config) if config is not None else block.ports
        port = edge.port or (ports[0] if len(ports) == 1 else "")
        if port not in ports:
            problems.append(
                Problem(
                    f"edge to {edge.target}: {block.title} has no output port {edge.port!r} "
                    f"(ports: {', '.join(ports)})"
                    if edge.port
                    else f"edge to {edge.target} must name one of the ports: {', '.join(ports)}",
                    node=edge.source,
                    field="edges",
                )
            )
            continue
        if nodes[edge.target][0].category == "trigger":
            problems.append(
                Problem("a trigger cannot have incoming edges", node=edge.target, field="edges")
            )
            continue
        key = (edge.source, edge.target, port)
        if key not in seen:
            seen.add(key)
            edges.append(Edge(edge.source, edge.target, port))
    return edges, problems


def _validate_shape(
    nodes: dict[str, tuple[type[Block], BlockConfig | None]], edges: list[Edge]
) -> list[Problem]:
    triggers = [node_id for node_id, (block, _) in nodes.items() if block.category == "trigger"]
    if len(triggers) != 1:
        return [
            Problem(
                f"a flow needs exactly one trigger block (found {len(triggers)})", field="nodes"
            )
        ]
    problems = []
    if _topological_order(set(nodes), edges) is None:
        problems.append(
            Problem("the flow has a cycle; use a loop block (logic.foreach) instead", field="edges")
        )
    reachable = _reachable(triggers[0], edges)
    for node_id in nodes:
        if node_id not in reachable:
            problems.append(Problem("this node cannot be reached from the trigger", node=node_id))
    return problems


def _reachable(start: str, edges: list[Edge] | tuple[Edge, ...]) -> set[str]:
    children = defaultdict(list)
    for edge in edges:
        children[edge.source].append(edge.target)
    seen, queue = {start}, deque([start])
    while queue:
        for child in children[queue.popleft()]:
            if child not in seen:
                seen.add(child)
                queue.append(child)
    return seen


def _topological_order(
    node_ids: set[str], edges: list[Edge] | tuple[Edge, ...]
) -> list[str] | None:
    indegree = {node_id: 0 for node_id in node_ids}
    children = defaultdict(list)
    for edge in edges:
        if edge.source in indegree and edge.target in indegree:
            indegree[edge.target] += 1
            children[edge.source].append(edge.target)
    queue = deque(sorted(node for node, degree in indegree.items() if degree == 0))
    order = []
    while queue:
        node = queue.popleft()
        order.append(node)
        for child in children[node]:
            indegree[child] -= 1
            if indegree[child] == 0:
                queue.append(child)
    return order if len(order) == len(node_ids) else None
