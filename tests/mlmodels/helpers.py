"""Shared by the model tests: a claim the demo ``claim-fraud`` model scores as fraud, the
mapping that feeds a run's trigger body to it, the registry client, and a two-person
promotion."""

from __future__ import annotations

CLAIM = {
    "amount": 9000,
    "claimant_age": 30,
    "days_since_policy_start": 10,
    "prior_claims": 2,
    "channel": "web",
}
INPUTS = {name: f"trigger.body.{name}" for name in CLAIM}

# An ai.agent tool: a block tool that "looks an order up" (transform.set over the
# model's arguments). The toy language model prefers calling a tool named like this to
# answering (README, "AI blocks").
LOOKUP_TOOL = {
    "name": "lookup",
    "description": "Look an order up by its number",
    "block": "transform.set",
    "config": {"values": {"order": "args.order_id", "state": "'shipped'"}},
    "parameters": {
        "type": "object",
        "properties": {"order_id": {"type": "integer"}},
        "required": ["order_id"],
    },
}

# The demo claim-fraud model's thresholds as training registers them.
SHIPPED_THRESHOLDS = '{"accuracy": 0.8, "f1_macro": 0.7}'


def mlflow_client(model_stack):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=model_stack.mlflow.url, registry_uri=model_stack.mlflow.url)


def promote_with_second_admin(workspace, requester, name: str, version: str, **request):
    """Request a promotion as ``requester`` and approve it as another admin (made here);
    returns the decided request."""
    from apps.accounts.models import Role
    from apps.mlmodels.services import promotion_approve, promotion_request_create
    from tests.factories import MembershipFactory, UserFactory

    approver = MembershipFactory(user=UserFactory(), workspace=workspace, role=Role.ADMIN).user
    promotion = promotion_request_create(
        workspace=workspace, actor=requester, name=name, version=version, **request
    )
    return promotion_approve(workspace=workspace, promotion_id=promotion.id, actor=approver)
