from typing import Any

from django.apps import AppConfig


class PoliciesConfig(AppConfig):
    name = "apps.policies"
    label = "policies"
    verbose_name = "Policies"

    def ready(self) -> None:
        from apps.audit.decision_facts import register_decision_facts

        from . import blocks
        from .models import Policy, PolicyVersion
        from .selectors import PUBLISHED

        blocks.register()
        register_decision_facts(_decision_policy_version)

        # Cached published versions (selectors) are dropped in every process once a
        # change to a policy (a new version, a rename, a deletion) commits.
        PUBLISHED.follow(Policy, PolicyVersion)

    def seed_demo(self, *, workspace: Any, users: dict[str, Any]) -> None:
        """Install the shipped gate and demo policies in the demo workspace (idempotent)."""
        from .services import policy_defaults_ensure

        policy_defaults_ensure(workspace=workspace, actor=users.get("admin"))


def _decision_policy_version(workspace: Any, data: dict[str, Any]) -> dict[str, Any]:
    """The published policy version a decision names by digest, for its audit page."""
    from .selectors import policy_version_by_digest

    meta = data.get("meta") or {}
    version = policy_version_by_digest(
        workspace=workspace, slug=meta.get("policy", ""), sha256=meta.get("policy_version", "")
    )
    return {"policy_version": version}
