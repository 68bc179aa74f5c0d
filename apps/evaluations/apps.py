from typing import Any

from django.apps import AppConfig


class EvaluationsConfig(AppConfig):
    name = "apps.evaluations"
    label = "evaluations"
    verbose_name = "Evaluations"
    # After the flows: the demo cases belong to a published template.
    seed_order = 110

    def seed_demo(self, *, workspace: Any, users: dict[str, Any]) -> None:
        from .demo import DEMO_FLOW, seed_eval_cases

        cases = seed_eval_cases(workspace=workspace, actor=users["builder"])
        if cases:
            print(f"added {len(cases)} evaluation cases to {DEMO_FLOW}")
