"""Publish requests: in a workspace that requires approval, a builder asks an admin to
publish their draft (or roll back to a version); the admin sees the change and the gate's
answer in the inbox and approves (which publishes exactly what was asked) or rejects."""

from __future__ import annotations

import copy
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.audit.services import audit_record

from .diff import definition_diff
from .models import Flow, FlowStatus, PublishRequest, PublishRequestStatus
from .services import FlowError, flow_publish, publish_decision


def _audit(request: PublishRequest, actor: Any, action: str, summary: str, **data: Any) -> None:
    audit_record(
        workspace_id=request.workspace_id,
        action=action,
        actor=actor,
        object_type="flow",
        object_id=request.flow_id,
        summary=summary,
        data={"request": str(request.id), "rollback_to": request.rollback_to, **data},
    )


def _asked_definition(flow: Flow, rollback_to: int | None) -> dict[str, Any]:
    if rollback_to is None:
        return copy.deepcopy(flow.draft_definition)
    version = flow.versions.filter(number=rollback_to).first()
    if version is None:
        raise FlowError(f"there is no version {rollback_to}")
    return copy.deepcopy(version.definition)


@transaction.atomic
def publish_request_create(
    *, flow: Flow, actor: Any, note: str = "", rollback_to: int | None = None
) -> PublishRequest:
    """Ask for ``flow``'s draft (or version ``rollback_to``) to be published."""
    if flow.status == FlowStatus.ARCHIVED:
        raise FlowError("this flow is archived: restore it first", code="conflict")
    definition = _asked_definition(flow, rollback_to)
    decision = publish_decision(flow, definition, actor)
    try:
        with transaction.atomic():
            request = PublishRequest.objects.create(
                workspace_id=flow.workspace_id,
                flow=flow,
                rollback_to=rollback_to,
                definition=definition,
                note=note.strip()[:500],
                requested_by=actor,
                gate={
                    "allow": decision.allow,
                    "reasons": decision.reasons,
                    "policy": decision.policy,
                    "version": decision.version,
                },
            )
    except IntegrityError:
        raise FlowError(
            "a publish request for this flow is already waiting for an admin", code="conflict"
        ) from None
    what = f"a rollback to v{rollback_to}" if rollback_to else "publishing"
    _audit(request, actor, "flow.publish_requested", f"requested {what} of {flow.name}", note=note)
    transaction.on_commit(lambda: _notify(request.id))
    return request


def _notify(request_id: Any) -> None:
    from .tasks import publish_request_notify_task

    publish_request_notify_task.delay(str(request_id))


def publish_request_diff(request: PublishRequest) -> dict[str, Any]:
    """What approving changes: against the version live now (or an empty flow); once
    approved, against the version before the one it published."""
    versions = request.flow.versions.order_by("-number")
    if request.version_id is not None:
        versions = versions.filter(number__lt=request.version.number)  # type: ignore[union-attr]
    base = versions.first()
    return definition_diff(base.definition if base else {}, request.definition)


def publish_request_decide(
    *, request: PublishRequest, actor: Any, approve: bool, comment: str = ""
) -> PublishRequest:
    """Approve (publish what was asked, through the gate, as ``actor``) or reject (with a
    comment). Refused when it was decided already or ``actor`` asked for it."""
    comment = comment.strip()
    with transaction.atomic():
        request = (
            PublishRequest.objects.select_for_update().select_related("flow").get(pk=request.pk)
        )
        if request.status != PublishRequestStatus.PENDING:
            raise FlowError(f"this request was already {request.status}", code="conflict")
        if request.requested_by_id == getattr(actor, "pk", None):
            raise FlowError(
                "you asked for this publish: another admin must decide it", code="denied"
            )
        if not approve and not comment:
            raise FlowError("say why you reject it: the comment goes to the requester")
        if approve:
            by = request.requested_by or "someone"
            note = f"{request.note} (requested by {by})".strip()
            request.version = flow_publish(
                flow=request.flow, actor=actor, note=note, definition=request.definition
            )
        request.status = PublishRequestStatus.APPROVED if approve else PublishRequestStatus.REJECTED
        request.decided_by, request.decided_at, request.comment = actor, timezone.now(), comment
        request.save(update_fields=["status", "decided_by", "decided_at", "comment", "version"])
        verb = "approved" if approve else "rejected"
        _audit(
            request, actor, f"flow.publish_request_{verb}",
            f"{verb} the publish request for {request.flow.name}", comment=comment,
        )  # fmt: skip
    return request
