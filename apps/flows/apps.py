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
        from django.db.models.signals import post_delete, post_save

        from .models import Flow, FlowVersion, TriggerSubscription
        from .subscriptions import SUBSCRIPTIONS

        # Cached subscriptions (and the flow and version they carry) are dropped in every
        # process once a change to one of them commits.
        for model in (Flow, FlowVersion, TriggerSubscription):
            for signal in (post_save, post_delete):
                signal.connect(SUBSCRIPTIONS.changed_in_transaction, sender=model)

    def seed_demo(self, *, workspace: Any, users: dict[str, Any]) -> None:
        from .demo import seed_templates

        flows = seed_templates(workspace=workspace, actor=users["admin"])
        if flows:
            print(f"published {len(flows)} template flows: {', '.join(f.name for f in flows)}")
