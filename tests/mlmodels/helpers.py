"""A claim the demo ``claim-fraud`` model scores as fraud, and the mapping that feeds a
run's trigger body to it."""

from __future__ import annotations

CLAIM = {
    "amount": 9000,
    "claimant_age": 30,
    "days_since_policy_start": 10,
    "prior_claims": 2,
    "channel": "web",
}
INPUTS = {name: f"trigger.body.{name}" for name in CLAIM}
