"""The demo seed: a second admin, and one promotion request waiting for them, made once."""

from __future__ import annotations

from apps.accounts.demo import seed_accounts
from apps.accounts.models import Membership, Role
from apps.mlmodels.demo import seed_promotion_request
from apps.mlmodels.models import PromotionRequest
from apps.mlmodels.services import promotion_refusal


def test_the_demo_has_a_pending_request_that_the_second_admin_may_decide(db):
    workspace, users = seed_accounts()
    seed_promotion_request(workspace=workspace, requester=users["admin"])
    seed_promotion_request(workspace=workspace, requester=users["admin"])
    promotion = PromotionRequest.objects.get(workspace=workspace)
    assert (promotion.model_name, promotion.version, promotion.alias) == (
        "claim-fraud",
        "2",
        "production",
    )
    assert promotion.is_pending and promotion.requested_by == users["admin"]
    approver = users["approver"]
    assert Membership.objects.get(user=approver, workspace=workspace).role == Role.ADMIN
    assert promotion_refusal(promotion, approver) is None
    assert promotion_refusal(promotion, users["admin"]).status == 403
