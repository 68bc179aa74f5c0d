"""Pre-flight: what a flow refers to that its workspace does not have.

``validate_definition`` judges a definition on its own; a flow that is well formed can still
name a policy, connection, model (or alias) or sub-flow the workspace lacks, and would then
fail every run. These problems show in the editor's Problems panel and stop a publish, the
same as any other problem. The model registry is asked only when it answers: a registry
that is down is the model block's runtime concern (its breaker), not the builder's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .definition import Problem, validate_definition
from .selectors import AGENT_BLOCK, flows_called_by


def flow_problems(*, workspace_id: Any, definition: Any) -> list[Problem]:
    """Everything that stops ``definition`` from being published in ``workspace_id``: its
    own problems, then what it refers to that the workspace lacks."""
    problems = validate_definition(definition, workspace_id=workspace_id)
    return [*problems, *workspace_problems(workspace_id=workspace_id, definition=definition)]


def workspace_problems(*, workspace_id: Any, definition: Any) -> list[Problem]:
    """A problem for each reference in ``definition`` that ``workspace_id`` cannot satisfy
    (a missing or unpublished policy, a missing connection, a model or alias the registry
    does not have, a sub-flow that is missing, archived or unpublished)."""
    nodes = list(_nodes(definition))
    return [
        *_policy_problems(workspace_id, nodes),
        *_connection_problems(workspace_id, nodes),
        *_subflow_problems(workspace_id, nodes),
        *_model_problems(nodes),
    ]


def _nodes(definition: Any) -> Iterator[tuple[str, str, dict[str, Any]]]:
    if not isinstance(definition, dict) or not isinstance(definition.get("nodes"), list):
        return
    for raw in definition["nodes"]:
        if isinstance(raw, dict) and isinstance(raw.get("config"), dict):
            yield str(raw.get("id")), str(raw.get("type")), raw["config"]


def _named(nodes: list[tuple[str, str, dict[str, Any]]], types: tuple[str, ...] | None, key: str):
    for node_id, block_type, config in nodes:
        value = config.get(key)
        if (types is None or block_type in types) and isinstance(value, str) and value:
            yield node_id, value


def _policy_problems(workspace_id: Any, nodes: list) -> list[Problem]:
    from apps.policies.models import PolicyVersion

    wanted = list(_named(nodes, ("policy.evaluate",), "policy"))
    published = set(
        PolicyVersion.objects.filter(
            policy__workspace_id=workspace_id, policy__slug__in=[slug for _, slug in wanted]
        ).values_list("policy__slug", flat=True)
    )
    return _missing(
        wanted,
        published,
        field="policy",
        message="there is no published policy '{}' in this workspace: ask an admin to add "
        "or publish it (Policies)",
    )


def _connection_problems(workspace_id: Any, nodes: list) -> list[Problem]:
    from apps.connectors.models import Connection

    wanted = list(_named(nodes, None, "connection"))
    existing = set(
        Connection.objects.filter(
            workspace_id=workspace_id, name__in=[name for _, name in wanted]
        ).values_list("name", flat=True)
    )
    return _missing(
        wanted,
        existing,
        field="connection",
        message="there is no connection named '{}' in this workspace: add it under "
        "Connections, or ask an admin to",
    )


def _subflow_problems(workspace_id: Any, nodes: list) -> list[Problem]:
    from .models import Flow, FlowStatus

    wanted = [
        (node_id, slug)
        for node_id, block_type, config in nodes
        for slug in flows_called_by(block_type, config)
    ]
    runnable = set(
        Flow.objects.filter(
            workspace_id=workspace_id,
            slug__in=[slug for _, slug in wanted],
            latest_version__isnull=False,
        )
        .exclude(status=FlowStatus.ARCHIVED)
        .values_list("slug", flat=True)
    )
    agents = {node_id for node_id, block_type, _ in nodes if block_type == AGENT_BLOCK}
    return [
        *_missing(
            [(node_id, slug) for node_id, slug in wanted if node_id not in agents],
            runnable,
            field="flow",
            message="there is no published flow '{}' in this workspace to run as a sub-flow",
        ),
        *_missing(
            [(node_id, slug) for node_id, slug in wanted if node_id in agents],
            runnable,
            field="tools",
            message="there is no published flow '{}' in this workspace for the agent's tool",
        ),
    ]


def _missing(
    wanted: list[tuple[str, str]], found: set[str], *, field: str, message: str
) -> list[Problem]:
    """A problem on each node whose named object is not among ``found``."""
    return [
        Problem(message.format(name), node=node_id, field=field)
        for node_id, name in wanted
        if name not in found
    ]


def _model_problems(nodes: list) -> list[Problem]:
    from apps.mlmodels import registry

    problems: list[Problem] = []
    for node_id, name in _named(nodes, ("model.predict",), "model"):
        config = next(config for nid, _, config in nodes if nid == node_id)
        try:
            model = registry.get_model(name, with_runs=False)
        except registry.RegistryNotFound:
            problems.append(
                Problem(f"the model registry has no model '{name}'", node=node_id, field="model")
            )
            continue
        except registry.RegistryUnavailable:
            return problems  # not the builder's problem now; the block's breaker handles it
        problems += _model_version_problems(node_id, model, config)
    return problems


def _model_version_problems(node_id: str, model: Any, config: dict[str, Any]) -> list[Problem]:
    version, alias = str(config.get("version") or ""), str(config.get("alias", "production"))
    if version:
        if version not in {info.version for info in model.versions}:
            return [Problem(f"model '{model.name}' has no version {version}", node_id, "version")]
        return []
    if alias and alias not in model.aliases:
        known = ", ".join(sorted(model.aliases)) or "none yet"
        return [
            Problem(
                f"model '{model.name}' has no alias '{alias}' (its aliases: {known}): ask an "
                "admin to promote a version",
                node=node_id,
                field="alias",
            )
        ]
    return []
