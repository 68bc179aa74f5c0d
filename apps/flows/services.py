"""Writes for flows: create, save drafts, publish immutable versions, import, roll back."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from apps.accounts.models import Membership
from apps.audit.redaction import sensitive_keys_for_workspace
from apps.audit.services import audit_record
from apps.policies.gates import FLOW_PUBLISH, evaluate_gate

from .definition import (
    SCHEMA,
    Problem,
    definition_digest,
    fields_mentioned,
    stamp_block_versions,
    validate_definition,
)
from .models import Flow, FlowStatus, FlowVersion
from .preflight import flow_problems
from .selectors import subflow_cycle
from .subscriptions import subscriptions_sync


class FlowError(Exception):
    """A flow operation was refused. ``problems`` lists what is wrong with a definition;
    ``reasons`` why a gate denied it; ``code`` is invalid, conflict or denied."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "invalid",
        problems: list[Problem] | None = None,
        reasons: list[str] | None = None,
    ):
        super().__init__(message)
        self.message, self.code = message, code
        self.problems, self.reasons = problems or [], reasons or []


def blank_definition(name: str) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "name": name,
        "nodes": [{"id": "start", "type": "trigger.manual", "config": {}}],
        "edges": [],
        "layout": {"start": [0, 0]},
    }


def _unique_slug(workspace_id: Any, name: str) -> str:
    base = slugify(name)[:70] or "flow"
    slug, counter = base, 2
    while Flow.objects.filter(workspace_id=workspace_id, slug=slug).exists():
        slug, counter = f"{base}-{counter}", counter + 1
    return slug


def flow_name(raw: Any) -> str:
    """A name as people type it into a document: trimmed, cut to what the column holds."""
    return str(raw or "").strip()[: Flow._meta.get_field("name").max_length]


@transaction.atomic
def flow_create(
    *,
    workspace: Any,
    actor: Any,
    name: str,
    definition: dict[str, Any] | None = None,
    description: str = "",
) -> Flow:
    name = flow_name(name)
    if not name:
        raise FlowError("a flow needs a name")
    definition = copy.deepcopy(definition) if definition is not None else blank_definition(name)
    definition = stamp_block_versions(definition)
    definition["name"] = name
    flow = Flow.objects.create(
        workspace=workspace,
        slug=_unique_slug(workspace.id, name),
        name=name,
        description=description,
        draft_definition=definition,
        created_by=actor,
    )
    audit_record(
        workspace_id=workspace.id,
        action="flow.created",
        actor=actor,
        object_type="flow",
        object_id=flow.id,
        summary=f"created flow {name}",
    )
    return flow


@dataclass(frozen=True)
class SavedDraft:
    flow: Flow
    problems: list[Problem]


@transaction.atomic
def flow_draft_save(
    *, flow: Flow, actor: Any, definition: dict[str, Any], revision: int
) -> SavedDraft:
    """Save the draft if nobody saved since ``revision``; invalid drafts are saved too
    (work in progress) and their problems returned."""
    if not isinstance(definition, dict):
        raise FlowError("the definition must be a JSON object")
    definition = stamp_block_versions(definition)
    updated = Flow.objects.filter(pk=flow.pk, draft_revision=revision).update(
        draft_definition=definition,
        draft_revision=revision + 1,
        name=flow_name(definition.get("name")) or flow.name,
    )
    if not updated:
        raise FlowError(
            "someone else saved this flow since you opened it; reload to see "
            "their changes, or save again to overwrite them",
            code="conflict",
        )
    flow.refresh_from_db()
    return SavedDraft(flow, flow_problems(workspace_id=flow.workspace_id, definition=definition))


def flow_publish(
    *, flow: Flow, actor: Any, note: str = "", definition: dict[str, Any] | None = None
) -> FlowVersion:
    """Freeze the draft (or ``definition``) into the next immutable version, if it is
    valid and the publish gate allows it.

    The gate decides before the version's transaction opens, and a denial is recorded in a
    transaction of its own: a refused publish leaves its audit trail (and the default gate
    policy installed to decide it) even though nothing is published. Called inside a
    caller's transaction, those records share the caller's fate."""
    current = Flow.objects.get(pk=flow.pk)
    _refuse_archived(current)
    from_draft = definition is None
    # A draft's nodes carry the versions they were built with; a definition handed in (a
    # rollback to a version published before blocks had versions) means version 1.
    definition = stamp_block_versions(
        copy.deepcopy(current.draft_definition if from_draft else definition),
        version=None if from_draft else 1,
    )
    decision = publish_decision(current, definition, actor)
    if not decision.allow:
        _publish_denied(current, actor, decision)
        raise FlowError(
            "the publishing policy denied this version", code="denied", reasons=decision.reasons
        )
    return _version_create(
        flow=flow,
        actor=actor,
        note=note,
        definition=definition,
        from_draft=from_draft,
        decision=decision,
    )


def _refuse_archived(flow: Flow) -> None:
    if flow.status == FlowStatus.ARCHIVED:
        raise FlowError("this flow is archived: restore it before publishing", code="conflict")


def _publish_denied(flow: Flow, actor: Any, decision: Any) -> None:
    # Its own transaction: the refusal that follows must not take the record with it.
    with transaction.atomic():
        audit_record(
            workspace_id=flow.workspace_id,
            action="flow.publish_denied",
            actor=actor,
            object_type="flow",
            object_id=flow.id,
            summary=f"publishing {flow.name} was denied",
            data={
                "reasons": decision.reasons,
                "policy": decision.policy,
                "policy_version": decision.version,
            },
        )


@transaction.atomic
def _version_create(
    *,
    flow: Flow,
    actor: Any,
    note: str,
    definition: dict[str, Any],
    from_draft: bool,
    decision: Any,
) -> FlowVersion:
    locked = Flow.objects.select_for_update().get(pk=flow.pk)
    _refuse_archived(locked)
    if from_draft and locked.draft_definition != definition:
        # The gate judged the draft as it was; a save since then is judged on its own.
        raise FlowError(
            "the draft was saved again while publishing; publish again", code="conflict"
        )
    number = (locked.versions.order_by("-number").values_list("number", flat=True).first() or 0) + 1
    version = FlowVersion.objects.create(
        flow=locked,
        number=number,
        definition=definition,
        digest=definition_digest(definition),
        note=note.strip()[:500],
        published_by=actor,
    )
    locked.latest_version, locked.status = version, FlowStatus.PUBLISHED
    locked.save(update_fields=["latest_version", "status", "updated_at"])
    flow.latest_version, flow.status = version, locked.status
    subscriptions_sync(flow=locked)
    audit_record(
        workspace_id=locked.workspace_id,
        action="flow.published",
        actor=actor,
        object_type="flow",
        object_id=locked.id,
        summary=f"published {locked.name} v{number}",
        data={
            "version": number,
            "digest": version.digest,
            "note": version.note,
            "gate": {
                "policy": decision.policy,
                "version": decision.version,
                "reasons": decision.reasons,
            },
        },
    )
    return version


def publish_decision(flow: Flow, definition: dict[str, Any], actor: Any) -> Any:
    """The publish gate's decision on ``definition`` by ``actor``; FlowError when the
    definition has problems (the gate is not asked then)."""
    # A cycle first: a flow calling itself also names a sub-flow that is not published
    # yet, and the cycle is what the builder must fix.
    if cycle := subflow_cycle(
        workspace_id=flow.workspace_id, slug=flow.slug, definition=definition
    ):
        raise FlowError(
            f"this flow would call itself through sub-flows ({' → '.join(cycle)}); "
            "a cycle of sub-flows never ends, so it cannot be published"
        )
    problems = flow_problems(workspace_id=flow.workspace_id, definition=definition)
    if problems:
        raise FlowError(
            f"{len(problems)} problem(s) must be fixed before publishing", problems=problems
        )
    return evaluate_gate(
        workspace_id=flow.workspace_id,
        gate=FLOW_PUBLISH,
        input=publish_gate_input(flow, definition, actor),
    )


def publish_gate_input(flow: Flow, definition: dict[str, Any], actor: Any) -> dict[str, Any]:
    """What the ``flow_publish`` gate decides on (also shown on a publish request)."""
    return {
        "flow": {"id": str(flow.id), "slug": flow.slug, "name": flow.name},
        "definition": definition,
        "actor": getattr(actor, "username", ""),
        "actor_role": _role(actor, flow.workspace_id),
        # The workspace's PII classification lives in the database, so the app says
        # which classified fields this flow touches (Settings → Data).
        "pii_fields": fields_mentioned(definition, sensitive_keys_for_workspace(flow.workspace_id)),
    }


def _role(actor: Any, workspace_id: Any) -> str:
    membership = (
        Membership.objects.filter(user=actor, workspace_id=workspace_id).first() if actor else None
    )
    return membership.role if membership else ""


def flow_rollback(*, flow: Flow, actor: Any, number: int, note: str = "") -> FlowVersion:
    """Publish version ``number``'s definition again, as a new version."""
    old = flow.versions.filter(number=number).first()
    if old is None:
        raise FlowError(f"there is no version {number}")
    return flow_publish(
        flow=flow,
        actor=actor,
        definition=old.definition,
        note=note or f"rolled back to version {number}",
    )


@transaction.atomic
def flow_import(*, workspace: Any, actor: Any, document: Any, slug: str = "") -> Flow:
    """Import a ``*.flow.json`` document; nothing changes unless it is valid. A file for a
    flow that exists (``slug``, else the slug of its name) becomes a new draft revision of
    that flow, not a second flow: a team keeps flows in git and loads them in CI."""
    # A file without node versions was written before blocks had versions: version 1.
    document = stamp_block_versions(document, version=1)
    problems = validate_definition(document, workspace_id=workspace.id)
    if problems:
        raise FlowError("the file is not a valid Flowgate flow", problems=problems)
    name = flow_name(document.get("name")) or "Imported flow"
    existing = (
        Flow.objects.select_for_update()
        .filter(workspace=workspace, slug=slug or slugify(name)[:70])
        .first()
    )
    if existing is None:
        return flow_create(workspace=workspace, actor=actor, name=name, definition=document)
    if existing.status == FlowStatus.ARCHIVED:
        raise FlowError(f"{existing.name} is archived: restore it before importing into it")
    definition = {**copy.deepcopy(document), "name": name}
    saved = flow_draft_save(
        flow=existing, actor=actor, definition=definition, revision=existing.draft_revision
    )
    audit_record(
        workspace_id=existing.workspace_id,
        action="flow.imported",
        actor=actor,
        object_type="flow",
        object_id=existing.id,
        summary=f"imported a new draft of {existing.name} (revision {saved.flow.draft_revision})",
    )
    return saved.flow


def flow_export(*, flow: Flow, number: int | None = None) -> dict[str, Any]:
    if number is None:
        return copy.deepcopy(flow.draft_definition)
    version = flow.versions.filter(number=number).first()
    if version is None:
        raise FlowError(f"there is no version {number}")
    return copy.deepcopy(version.definition)


def flow_duplicate(*, flow: Flow, actor: Any) -> Flow:
    return flow_create(
        workspace=flow.workspace,
        actor=actor,
        name=f"{flow.name} (copy)",
        definition=flow.draft_definition,
        description=flow.description,
    )


@transaction.atomic
def flow_archive(*, flow: Flow, actor: Any) -> Flow:
    flow.status = FlowStatus.ARCHIVED
    flow.save(update_fields=["status", "updated_at"])
    subscriptions_sync(flow=flow)
    audit_record(
        workspace_id=flow.workspace_id,
        action="flow.archived",
        actor=actor,
        object_type="flow",
        object_id=flow.id,
        summary=f"archived {flow.name}",
    )
    return flow


@transaction.atomic
def flow_restore(*, flow: Flow, actor: Any) -> Flow:
    """Undo an archive: the flow is published again if it has a version (its schedule
    resumes), else a draft."""
    latest = flow.latest_version
    flow.status = FlowStatus.PUBLISHED if latest is not None else FlowStatus.DRAFT
    flow.save(update_fields=["status", "updated_at"])
    subscriptions_sync(flow=flow)
    audit_record(
        workspace_id=flow.workspace_id,
        action="flow.restored",
        actor=actor,
        object_type="flow",
        object_id=flow.id,
        summary=f"restored {flow.name}",
    )
    return flow


__all__ = [
    "FlowError",
    "IntegrityError",
    "flow_archive",
    "flow_create",
    "flow_draft_save",
    "flow_duplicate",
    "flow_export",
    "flow_import",
    "flow_publish",
    "flow_restore",
    "flow_rollback",
]


@transaction.atomic
def flow_webhook_secret_rotate(*, flow: Flow, actor: Any) -> str:
    """Generate a new webhook signing secret for ``flow`` and return it: this is the only
    time it is shown. The previous secret stops working at once."""
    from apps.connectors.crypto import encrypt_secrets
    from apps.connectors.webhook.signing import new_secret

    secret = new_secret()
    replaced = bool(flow.webhook_signing_secret)
    flow.webhook_signing_secret = encrypt_secrets({"signing_secret": secret})
    flow.webhook_secret_rotated_at = timezone.now()
    flow.save(update_fields=["webhook_signing_secret", "webhook_secret_rotated_at", "updated_at"])
    audit_record(
        workspace_id=flow.workspace_id,
        action="flow.webhook_secret_rotated" if replaced else "flow.webhook_secret_created",
        actor=actor,
        object_type="flow",
        object_id=flow.id,
        summary=f"{'rotated' if replaced else 'generated'} the webhook signing secret of "
        f"{flow.name}",
    )
    return secret
