from typing import Any

from django.apps import AppConfig


class FlowsConfig(AppConfig):
    name = "apps.flows"
    label = "flows"
    verbose_name = "Flows"
    # Seeded after the apps that make what templates refer to (policies, connections,
    # models): pre-flight publishes a template only once those exist.
    seed_order = 100

    def ready(self) -> None:
        from .models import Flow, FlowVersion, TriggerSubscription
        from .subscriptions import SUBSCRIPTIONS

        # Cached subscriptions (and the flow and version they carry) are dropped in every
        # process once a change to one of them commits.
        SUBSCRIPTIONS.follow(Flow, FlowVersion, TriggerSubscription)

    def seed_demo(self, *, workspace: Any, users: dict[str, Any]) -> None:
        from .demo import seed_templates

        flows = seed_templates(workspace=workspace, actor=users["admin"])
        if flows:
            print(f"published {len(flows)} template flows: {', '.join(f.name for f in flows)}")
