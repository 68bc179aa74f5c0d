"""Model promotion: one admin requests, a different admin approves, the gate decides.

A promotion request asks for "version V of model M → alias production | canary (with a canary
traffic share)". Approving it evaluates the ``model_promotion`` gate (a Rego policy, deny by
default) with the version's metrics against the model's thresholds, whether it has a
signature, the artifact checksum recomputed from the registry against the one recorded at
training, and who requested and who approved (the policy denies a missing or self approval).
When the gate allows, the alias (and the canary share) moves in MLflow and the model service
is told to re-resolve, so it serves the new version from its next request.

Rollback is an emergency act of one admin: it points an alias back at the version it had
before its last promotion, through the same gate with ``change: "rollback"``; the shipped
policy waives the second approver for exactly that version and checks everything else.

Every step is audited: the request, the approval or rejection, the gate's result and reasons.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.policies.decision import Decision
from apps.policies.gates import MODEL_PROMOTION, evaluate_gate

from . import registry
from .blocks import ModelServiceClient
from .models import PromotionRequest, PromotionStatus

# Used when a model does not state its own thresholds (registered model tag
# ``flowgate.thresholds``): no version is promoted without an accuracy to judge it by.
DEFAULT_THRESHOLDS = {"accuracy": 0.8}
CANARY = "canary"


class PromotionError(Exception):
    """A request that cannot be made or decided; ``status`` is the HTTP answer."""

    def __init__(self, message: str, *, status: int = 409) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


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
    *,
    model: registry.ModelInfo,
    version: registry.VersionInfo,
    alias: str,
    requested_by: str,
    approved_by: str,
    change: str = "promotion",
    rollback_to: str = "",
) -> dict[str, Any]:
    return {
        "model": model.name,
        "version": version.version,
        "target": alias,
        "change": change,
        "previous_version": rollback_to or registry.previous_version(model, alias),
        "metrics": version.metrics,
        "thresholds": model.thresholds or DEFAULT_THRESHOLDS,
        "has_signature": bool(version.signature),
        "artifact_sha256": registry.computed_sha256(model.name, version.version),
        "expected_sha256": version.sha256,
        "requested_by": requested_by,
        "approved_by": approved_by,
        "actor": approved_by or requested_by,
    }


# --- requests --------------------------------------------------------------------------
def promotion_request_create(
    *,
    workspace: Any,
    actor: Any,
    name: str,
    version: str,
    alias: str,
    canary_share: int | None = None,
    note: str = "",
) -> PromotionRequest:
    """Record a pending request; the gate checks the version at approval. A version the
    registry says it lacks (a typo) is refused now rather than when the approver acts; while
    the registry is down the request is still recorded."""
    if alias not in registry.ALIASES:
        raise PromotionError(f"Unknown alias {alias!r}.", status=400)
    missing = PromotionError(
        f"The registry has no version {version} of a model named {name!r}.", status=404
    )
    try:
        model: registry.ModelInfo | None = registry.get_model(name, with_runs=False)
    except registry.RegistryNotFound:
        raise missing from None
    except registry.RegistryUnavailable:
        model = None  # recorded all the same: approval asks the registry again
    if model is not None:
        if version not in {item.version for item in model.versions}:
            raise missing
        _check_ownership(model, workspace)
    if alias == CANARY:
        if canary_share is None or not 0 <= canary_share <= 100:
            raise PromotionError(
                "A canary promotion needs a traffic share from 0 to 100 %.", status=400
            )
    else:
        canary_share = None
    with transaction.atomic():
        promotion = PromotionRequest.objects.create(
            workspace=workspace,
            model_name=name,
            version=version,
            alias=alias,
            canary_share=canary_share,
            note=note,
            requested_by=actor,
        )
        _audit(promotion, actor, "model.promotion_requested", f"requested {_what(promotion)}")
    return promotion


def _check_ownership(model: registry.ModelInfo, workspace: Any) -> None:
    if not model.managed_by(workspace):
        raise PromotionError(
            f"{model.name} is managed by the workspace {model.owner!r}: only its admins "
            "may move its aliases.",
            status=403,
        )


def promotion_refusal(promotion: PromotionRequest, user: Any) -> PromotionError | None:
    """Why ``user`` may not decide ``promotion`` now (None: they may). Views hide the
    buttons with this; the services refuse with it."""
    if not promotion.is_pending:
        return PromotionError(f"This request was already {promotion.get_status_display().lower()}.")
    if promotion.requested_by_id == user.pk:
        return PromotionError(
            "You requested this promotion: a different admin must approve or reject it.",
            status=403,
        )
    return None


def promotion_approve(
    *, workspace: Any, promotion_id: Any, actor: Any, note: str = ""
) -> PromotionRequest:
    """Approve as a second admin: the gate decides with requester and approver; when it
    allows, the alias and canary share move and the service is refreshed. Locked, so two
    approvals at once act once. Raises ``registry.RegistryUnavailable`` (nothing changed)."""
    with transaction.atomic():
        promotion = _locked(promotion_id, workspace, actor)
        outcome = _move_alias(
            workspace=workspace,
            actor=actor,
            name=promotion.model_name,
            version=promotion.version,
            alias=promotion.alias,
            canary_share=promotion.canary_share,
            requested_by=promotion.requested_by.get_username(),
            approved_by=actor.get_username(),
        )
        promotion.status = PromotionStatus.APPROVED if outcome.allowed else PromotionStatus.DENIED
        promotion.reasons = outcome.reasons
        promotion.previous_version = outcome.previous
        _decide(promotion, actor, note)
        _audit(
            promotion,
            actor,
            "model.promotion_approved",
            f"approved {_what(promotion)}: "
            + ("promoted" if outcome.allowed else "denied by the gate"),
            allow=outcome.allowed,
            reasons=outcome.reasons,
        )
    if outcome.allowed:
        _refresh_service(workspace)
    return promotion


def promotion_reject(
    *, workspace: Any, promotion_id: Any, actor: Any, note: str = ""
) -> PromotionRequest:
    with transaction.atomic():
        promotion = _locked(promotion_id, workspace, actor)
        promotion.status = PromotionStatus.REJECTED
        _decide(promotion, actor, note)
        _audit(promotion, actor, "model.promotion_rejected", f"rejected {_what(promotion)}")
    return promotion


def _locked(promotion_id: Any, workspace: Any, actor: Any) -> PromotionRequest:
    promotion = (
        PromotionRequest.objects.select_for_update(of=("self",))
        .select_related("requested_by")
        .filter(pk=promotion_id, workspace=workspace)
        .first()
    )
    if promotion is None:
        raise PromotionError("No such promotion request.", status=404)
    refusal = promotion_refusal(promotion, actor)
    if refusal is not None:
        raise refusal
    return promotion


def _decide(promotion: PromotionRequest, actor: Any, note: str) -> None:
    promotion.decided_by = actor
    promotion.decided_at = timezone.now()
    promotion.decision_note = note
    promotion.save()


def _what(promotion: PromotionRequest) -> str:
    share = f" ({promotion.canary_share}% of production calls)" if promotion.alias == CANARY else ""
    return f"{promotion.model_name} version {promotion.version} → {promotion.alias}{share}"


def _audit(
    promotion: PromotionRequest, actor: Any, action: str, summary: str, **extra: Any
) -> None:
    audit_record(
        workspace_id=promotion.workspace_id,
        action=action,
        actor=actor,
        object_type="model",
        object_id=promotion.model_name,
        summary=summary,
        data={
            "request": str(promotion.id),
            "model": promotion.model_name,
            "version": promotion.version,
            "alias": promotion.alias,
            "canary_share": promotion.canary_share,
            "note": promotion.note,
            "requested_by": promotion.requested_by.get_username(),
            "status": promotion.status,
            "decision_note": promotion.decision_note,
            **extra,
        },
    )


# --- moving an alias -------------------------------------------------------------------
def model_rollback(
    *, workspace: Any, actor: Any, name: str, alias: str = "production"
) -> PromotionOutcome:
    """Emergency rollback by one admin: point ``alias`` back at the version it had before its
    last promotion, through the gate (which allows it without a second approver only for
    that version, and still checks metrics, signature and checksum)."""
    if alias not in registry.ALIASES:
        raise PromotionError(f"Unknown alias {alias!r}.", status=400)
    model = registry.get_model(name, with_runs=False)
    _check_ownership(model, workspace)
    previous = registry.previous_version(model, alias)
    if not previous:
        return _nothing_to_roll_back(
            model, alias, f"{alias} has no earlier version to roll back to"
        )
    return _roll_back(workspace=workspace, actor=actor, name=name, alias=alias, version=previous)


def canary_rollback(*, workspace: Any, actor: Any, name: str, reason: str = "") -> PromotionOutcome:
    """Withdraw the canary (``actor`` None: canary analysis did): all traffic back on
    production's version. Through the same gate and emergency rule as ``model_rollback``,
    with production's version as the one to return to; then the share goes to 0 and the
    ``canary`` alias is removed. ``reason`` is recorded in the audit."""
    model = registry.get_model(name, with_runs=False)
    _check_ownership(model, workspace)
    production = model.aliases.get("production", "")
    if CANARY not in model.aliases or not production:
        return _nothing_to_roll_back(model, CANARY, "there is no canary beside production")
    outcome = _roll_back(
        workspace=workspace,
        actor=actor,
        name=name,
        alias=CANARY,
        version=production,
        canary_share=0,
        reason=reason,
    )
    if outcome.allowed:
        registry.delete_alias(name, CANARY)
        _refresh_service(workspace)
    return outcome


def _nothing_to_roll_back(model: registry.ModelInfo, alias: str, reason: str) -> PromotionOutcome:
    return PromotionOutcome(
        allowed=False,
        model=model.name,
        version="",
        alias=alias,
        previous=model.aliases.get(alias, ""),
        reasons=[reason],
    )


def _roll_back(
    *,
    workspace: Any,
    actor: Any,
    name: str,
    alias: str,
    version: str,
    canary_share: int | None = None,
    reason: str = "",
) -> PromotionOutcome:
    with transaction.atomic():
        outcome = _move_alias(
            workspace=workspace,
            actor=actor,
            name=name,
            version=version,
            alias=alias,
            requested_by=actor.get_username() if actor is not None else "monitoring",
            approved_by="",
            change="rollback",
            rollback_to=version,
            canary_share=canary_share,
            reason=reason,
        )
    if outcome.allowed:
        _refresh_service(workspace)
    return outcome


def _move_alias(
    *,
    workspace: Any,
    actor: Any,
    name: str,
    version: str,
    alias: str,
    requested_by: str,
    approved_by: str,
    canary_share: int | None = None,
    change: str = "promotion",
    rollback_to: str = "",
    reason: str = "",
) -> PromotionOutcome:
    """Ask the gate, then move ``alias`` to ``version`` (and set the canary share). Call in a
    transaction: the audit record commits with the caller's change. A version missing
    from the registry (deleted since the request, say) is denied, not an error."""
    try:
        model = registry.get_model(name, with_runs=False)
        _check_ownership(model, workspace)
        target = registry.get_version(name, version)
    except registry.RegistryNotFound:
        outcome = PromotionOutcome(
            False, name, version, alias, "", [f"version {version} of {name} is not in the registry"]
        )
        _audit_outcome(workspace, actor, outcome, change=change)
        return outcome
    payload = gate_input(
        model=model,
        version=target,
        alias=alias,
        requested_by=requested_by,
        approved_by=approved_by,
        change=change,
        rollback_to=rollback_to,
    )
    previous = model.aliases.get(alias, "")
    decision = evaluate_gate(workspace_id=workspace.id, gate=MODEL_PROMOTION, input=payload)
    if decision.allow:
        if previous and previous != version:
            registry.record_previous(name, alias, previous)
        if canary_share is not None:
            registry.set_canary_share(name, canary_share)
        registry.set_alias(name, alias, version)
    outcome = PromotionOutcome(
        allowed=decision.allow,
        model=name,
        version=version,
        alias=alias,
        previous=previous,
        reasons=list(decision.reasons),
        decision=decision,
    )
    _audit_outcome(
        workspace,
        actor,
        outcome,
        change=change,
        policy=decision.policy,
        policy_version=decision.version,
        metrics=target.metrics,
        thresholds=payload["thresholds"],
        artifact_sha256=payload["artifact_sha256"],
        requested_by=requested_by,
        approved_by=approved_by,
        canary_share=canary_share,
        **({"reason": reason} if reason else {}),
    )
    return outcome


def _audit_outcome(
    workspace: Any, actor: Any, outcome: PromotionOutcome, *, change: str, **extra: Any
) -> None:
    verb = "rolled back" if change == "rollback" else "promoted"
    what = f"{outcome.model} version {outcome.version}"
    audit_record(
        workspace_id=workspace.id,
        action=f"model.{verb.replace(' ', '_')}" if outcome.allowed else "model.promotion_denied",
        actor=actor,
        actor_label="" if actor is not None else "monitoring",
        object_type="model",
        object_id=outcome.model,
        summary=f"{what} {verb if outcome.allowed else 'not ' + verb} to {outcome.alias}",
        data={
            "model": outcome.model,
            "version": outcome.version,
            "alias": outcome.alias,
            "change": change,
            "previous_version": outcome.previous,
            "allow": outcome.allowed,
            "reasons": outcome.reasons,
            **extra,
        },
    )


def _refresh_service(workspace: Any) -> None:
    # The alias has moved in MLflow already (not part of any transaction): tell the
    # service now, so its next request resolves the new version.
    ModelServiceClient(str(workspace.id)).refresh()
