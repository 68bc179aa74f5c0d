"""The models part of the demo seed (``manage.py seed_demo``)."""

from __future__ import annotations

from typing import Any

from .models import PromotionRequest
from .services import promotion_request_create
from .training import CLAIM_FRAUD


def seed_promotion_request(*, workspace: Any, requester: Any) -> None:
    """One pending request for the second admin to approve: ``claim-fraud`` version 2 →
    production. Made once; a workspace with any request keeps its own."""
    if PromotionRequest.objects.filter(workspace=workspace).exists():
        return
    promotion_request_create(
        workspace=workspace,
        actor=requester,
        name=CLAIM_FRAUD,
        version="2",
        alias="production",
        note="Version 2 passes the accuracy and F1 thresholds; the baseline does not.",
    )
