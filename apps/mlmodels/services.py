"""Model promotion: move an alias to a version, only when the ``model_promotion`` gate allows.

The gate (a Rego policy, deny by default) sees the version's metrics against the model's
thresholds, whether it has a signature, the artifact checksum recomputed from the registry
against the one recorded at training, and who asks. Allowed or denied, the outcome is
audited; when allowed the alias moves in MLflow and the model service is told to re-resolve
its aliases, so it serves the new version from its next request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from apps.audit.services import audit_record
from apps.policies.decision import Decision
from apps.policies.gates import MODEL_PROMOTION, evaluate_gate

from . import registry
from .blocks import ModelServiceClient

# Used when a model does not state its own thresholds (registered model tag
# ``flowgate.thresholds``): no version is promoted without an accuracy to judge it by.
DEFAULT_THRESHOLDS = {"accuracy": 0.8}


@dataclass
class PromotionOutcome:
    allowed: bool
    model: str
    version: str
    alias: str
    previous: str
    reasons: list[str] = field(default_factory=list)
    decision: Decision | None = None


def gate_input(
    *, model: registry.ModelInfo, version: registry.VersionInfo, alias: str, actor: Any
) -> dict[str, Any]:
    return {
        "model": model.name,
        "version": version.version,
        "target": alias,
        "metrics": version.metrics,
        "thresholds": model.thresholds or DEFAULT_THRESHOLDS,
        "has_signature": bool(version.signature),
        "artifact_sha256": registry.computed_sha256(model.name, version.version),
        "expected_sha256": version.sha256,
        "requested_by": actor.get_username(),
        # Promotion is one admin's act today; a second approver fills this in.
        "approved_by": "",
        "actor": actor.get_username(),
    }


def model_promote(
    *, workspace: Any, actor: Any, name: str, version: str, alias: str = "production"
) -> PromotionOutcome:
    """Ask the gate, then move ``alias`` to ``version``. Raises registry errors as is."""
    if alias not in registry.ALIASES:
        raise ValueError(f"unknown alias {alias!r}")
    model = registry.get_model(name)
    target = registry.get_version(name, version)
    previous = model.aliases.get(alias, "")
    payload = gate_input(model=model, version=target, alias=alias, actor=actor)
    with transaction.atomic():
        decision = evaluate_gate(workspace_id=workspace.id, gate=MODEL_PROMOTION, input=payload)
        if decision.allow:
            if previous and previous != version:
                registry.record_previous(name, alias, previous)
            registry.set_alias(name, alias, version)
        audit_record(
            workspace_id=workspace.id,
            action="model.promoted" if decision.allow else "model.promotion_denied",
            actor=actor,
            object_type="model",
            object_id=name,
            summary=(
                f"{name} version {version} → {alias}"
                if decision.allow
                else f"{name} version {version} not promoted to {alias}"
            ),
            data={
                "model": name,
                "version": version,
                "alias": alias,
                "previous_version": previous,
                "allow": decision.allow,
                "reasons": decision.reasons,
                "policy": decision.policy,
                "policy_version": decision.version,
                "metrics": target.metrics,
                "thresholds": payload["thresholds"],
                "artifact_sha256": payload["artifact_sha256"],
            },
        )
    if decision.allow:
        # The alias has moved in MLflow already (not part of any transaction): tell the
        # service now.
        ModelServiceClient(str(workspace.id)).refresh()
    return PromotionOutcome(
        allowed=decision.allow,
        model=name,
        version=version,
        alias=alias,
        previous=previous,
        reasons=list(decision.reasons),
        decision=decision,
    )


def model_rollback(
    *, workspace: Any, actor: Any, name: str, alias: str = "production"
) -> PromotionOutcome:
    """Point ``alias`` back at the version it had before its last promotion (through the
    same gate: a rolled-back version must still pass the checks)."""
    model = registry.get_model(name)
    previous = registry.previous_version(model, alias)
    if not previous:
        return PromotionOutcome(
            allowed=False,
            model=name,
            version="",
            alias=alias,
            previous=model.aliases.get(alias, ""),
            reasons=[f"{alias} has no earlier version to roll back to"],
        )
    return model_promote(workspace=workspace, actor=actor, name=name, version=previous, alias=alias)
