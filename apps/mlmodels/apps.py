import logging
from typing import Any

from django.apps import AppConfig

logger = logging.getLogger(__name__)


class ModelsConfig(AppConfig):
    name = "apps.mlmodels"
    label = "mlmodels"
    verbose_name = "Models"

    def ready(self) -> None:
        from . import agent, ai_blocks, blocks

        blocks.register()
        ai_blocks.register()
        agent.register()

    def seed_demo(self, *, workspace: Any, users: dict[str, Any]) -> None:
        """Train and register the demo models when the MLflow registry is up (idempotent:
        versions that exist are kept). ``manage.py studio`` starts MLflow after seeding and
        trains them then, so a registry that is not up yet is skipped here.

        The demo also gets one pending promotion request (admin asks for ``claim-fraud``
        version 2 → production) for the second admin, ``approver``, to approve."""
        from .demo import seed_promotion_request
        from .registry import tracking_uri
        from .training import registry_is_up, train_demo_models

        seed_promotion_request(workspace=workspace, requester=users["admin"])

        if not registry_is_up(tracking_uri()):
            logger.info("MLflow at %s is not up: demo models not trained now", tracking_uri())
            return
        train_demo_models(tracking_uri=tracking_uri(), owner=workspace.slug)
