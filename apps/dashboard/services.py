"""Writes of the dashboard app: a workspace's SLO targets."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from apps.audit.services import audit_record

from .models import SloTargets
from .slo import OBJECTIVES


def slo_targets_save(*, workspace: Any, actor: Any, targets: dict[str, float]) -> SloTargets:
    """Replace the workspace's SLO targets (one value per ``OBJECTIVES`` key, already
    validated, e.g. by ``SloTargetsForm``) and record the change, before and after, in the
    audit trail in the same transaction."""
    with transaction.atomic():
        current, _ = SloTargets.objects.select_for_update().get_or_create(workspace=workspace)
        before = {objective.key: getattr(current, objective.key) for objective in OBJECTIVES}
        after = {objective.key: targets[objective.key] for objective in OBJECTIVES}
        for key, value in after.items():
            setattr(current, key, value)
        current.updated_by = actor
        current.save()
        changed = sorted(key for key in after if after[key] != before[key])
        audit_record(
            workspace_id=workspace.id,
            action="settings.slo_changed",
            actor=actor,
            object_type="workspace",
            object_id=workspace.id,
            summary=f"SLO targets changed: {', '.join(changed) or 'nothing'}",
            data={"before": before, "after": after},
        )
    return current
