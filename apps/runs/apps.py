from typing import Any

from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "apps.runs"
    label = "runs"
    verbose_name = "Runs"

    def ready(self) -> None:
        from apps.audit.decision_facts import register_decision_facts
        from apps.blocks.registry import register_block, register_service

        from .agent_calls import AgentCallService
        from .blocks import TRIGGER_BLOCKS
        from .engine.dispatch import install
        from .subflows import SubflowService
        from .tasks import CeleryDispatcher

        for block in TRIGGER_BLOCKS:
            register_block(block)
        register_service("subflows", SubflowService)
        register_service("agent_calls", AgentCallService)
        register_decision_facts(_decision_run)
        install(CeleryDispatcher())


def _decision_run(workspace: Any, data: dict[str, Any]) -> dict[str, Any]:
    """The run a decision belongs to, for its audit page (404 outside the workspace)."""
    from .selectors import run_get

    return {"run": run_get(workspace=workspace, run_id=data["run"])}
