"""One run's live events (step and status changes) for the run page and the editor's test
run, on ``ws/w/<slug>/runs/<run id>/events/``. A run of another workspace is refused (4404)."""

from __future__ import annotations

from typing import Any

from apps.accounts.models import Membership
from apps.core.events import run_group
from apps.shell.consumers import WorkspaceEventsConsumer

from .selectors import run_get


class RunEventsConsumer(WorkspaceEventsConsumer):
    def group_for(self, membership: Membership, kwargs: dict[str, Any]) -> str:
        return run_group(run_get(workspace=membership.workspace, run_id=kwargs["run_id"]).id)
