"""The claims-triage template end to end: the real model service scores the claim, the
shipped claims policy routes it, and the decision records model and policy versions."""

from __future__ import annotations

import json

import pytest
import redis
from django.conf import settings

from apps.audit.models import AuditEvent
from apps.connectors.demo import demo_connections_ensure
from apps.connectors.services import connection_create
from apps.flows.gallery import template_definition
from apps.inbox.models import ReviewTask
from apps.mlmodels.training import TICKET_TRIAGE, train_demo_models
from apps.policies.services import policy_defaults_ensure
from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.models import StepRun
from apps.runs.services import run_start
from tests.mlmodels.helpers import promote_with_second_admin
from tests.runs.helpers import published_flow
from tests.support.smtp import smtp_server

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

RISKY = {"claim_id": "C-1", "amount": 9000, "claimant_age": 24, "days_since_policy_start": 5,
         "prior_claims": 4, "channel": "web"}  # fmt: skip
SAFE = {"claim_id": "C-2", "amount": 300, "claimant_age": 70, "days_since_policy_start": 3400,
        "prior_claims": 0, "channel": "agent"}  # fmt: skip


def triage(workspace, actor, claim):
    policy_defaults_ensure(workspace=workspace)
    demo_connections_ensure(workspace=workspace, actor=actor)  # demo-events: the test Redis
    flow = published_flow(workspace, actor, template_definition("claims-triage"))
    run = run_start(flow=flow, trigger="webhook", payload=envelope(claim), enqueue=False).run
    advance(run.id)
    run.refresh_from_db()
    return run


def published_decisions() -> dict[str, dict]:
    """The claims.decisions stream on the test Redis, by claim id (latest wins)."""
    client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    decisions = {}
    for _, fields in client.xrange("claims.decisions"):
        decision = json.loads(fields["data"])
        decisions[decision["claim"]] = decision
    return decisions


def expected_route(risk: float, amount: float) -> str:
    """The shipped claims policy, restated: reject from 0.8, approve under 0.3 up to 5000."""
    if risk >= 0.8:
        return "reject"
    return "approve" if risk < 0.3 and amount <= 5000 else "review"


@pytest.mark.parametrize("claim", [RISKY, SAFE], ids=["risky", "safe"])
def test_a_claim_is_scored_routed_and_explained(registry_settings, workspace, admin_user, claim):
    run = triage(workspace, admin_user, claim)

    score = StepRun.objects.get(run=run, node_id="score")
    risk = score.output["scores"]["fraud"]
    route = expected_route(risk, claim["amount"])
    assert StepRun.objects.get(run=run, node_id="route").port == route
    if route == "review":
        assert run.status == "waiting"
        assert ReviewTask.objects.get(run=run).data["Model version"] == score.output["version"]
    else:
        assert run.status == "succeeded"
        status = {"approve": "approved", "reject": "rejected"}[route]
        assert StepRun.objects.get(run=run, node_id=f"{status}").output["status"] == status
        published = published_decisions()
        assert published[claim["claim_id"]] == {
            "claim": claim["claim_id"],
            "status": status,
            "risk": risk,
            "model_version": score.output["version"],
        }
    decisions = AuditEvent.objects.filter(workspace=workspace, action__startswith="decision")
    recorded = {event.data.get("node"): event.data for event in decisions}
    assert recorded["score"]["meta"]["model_version"] == score.output["version"]
    assert recorded["route"]["meta"]["policy_version"]


def test_the_risky_and_the_safe_claim_take_different_paths(
    registry_settings, workspace, admin_user
):
    routes = {
        StepRun.objects.get(run=triage(workspace, admin_user, claim), node_id="route").port
        for claim in (RISKY, SAFE)
    }
    assert len(routes) == 2


# Short, plain requests of the kinds the demo ticket data calls "low" urgency.
TICKETS = [
    {"id": f"T-{number}", "text": text, "category": "password_reset",
     "email": "cleo@example.com", "subject": "A question"}
    for number, text in enumerate(
        ["how do I change my avatar", "typo on the pricing page", "feature request for dark mode",
         "question about the roadmap", "thanks for the quick help"]
    )
]  # fmt: skip


@pytest.fixture
def ticket_model(model_stack, registry_settings, workspace, admin_user):
    """The demo ticket model, with its good version 2 promoted (version 1 is a weak
    baseline that sends every ticket to a person)."""
    train_demo_models(tracking_uri=model_stack.mlflow.url, names=(TICKET_TRIAGE,))
    promoted = promote_with_second_admin(
        workspace, admin_user, TICKET_TRIAGE, "2", alias="production"
    )
    assert promoted.status == "approved", promoted.reasons


def test_support_triage_answers_simple_tickets_by_email(ticket_model, workspace, admin_user):
    with smtp_server() as (controller, mailbox):
        connection_create(
            workspace=workspace, actor=admin_user, name="demo-mail", type="smtp", secrets={},
            config={"host": "127.0.0.1", "port": controller.port, "security": "none",
                    "from_address": "Support <support@acme.test>"},
        )  # fmt: skip
        policy_defaults_ensure(workspace=workspace)
        flow = published_flow(workspace, admin_user, template_definition("support-triage"))
        routes = {}
        for ticket in TICKETS:
            run = run_start(flow=flow, trigger="webhook", payload=envelope(ticket), enqueue=False)
            advance(run.run.id)
            routes[ticket["id"]] = StepRun.objects.get(run=run.run, node_id="route").port
    answered = [ticket_id for ticket_id, route in routes.items() if route == "auto_reply"]
    assert answered, f"no ticket was answered automatically: {routes}"
    assert len(mailbox.messages) == len(answered)
    for _, recipients, message in mailbox.messages:
        assert recipients == ["cleo@example.com"]
        assert message["Subject"] == "Re: A question"
        assert "help.example.com/password_reset" in message.get_content()


def test_support_triage_gives_the_reviewer_a_drafted_reply(
    ticket_model, language_models, workspace, admin_user
):
    # The template names its mail connection; this case goes to a person, so no mail is sent.
    connection_create(
        workspace=workspace, actor=admin_user, name="demo-mail", type="smtp", secrets={},
        config={"host": "127.0.0.1", "port": 1025, "security": "none",
                "from_address": "Support <support@acme.test>"},
    )  # fmt: skip
    policy_defaults_ensure(workspace=workspace)
    flow = published_flow(workspace, admin_user, template_definition("support-triage"))
    ticket = {**TICKETS[0], "text": "security breach suspected", "category": "fraud"}
    run = run_start(flow=flow, trigger="webhook", payload=envelope(ticket), enqueue=False).run
    advance(run.id)
    assert StepRun.objects.get(run=run, node_id="route").port == "review"
    draft = StepRun.objects.get(run=run, node_id="draft", status="succeeded")
    assert draft.output["text"] and draft.meta["model"] == "support-writer"
    task = ReviewTask.objects.get(run=run)
    assert task.data["Draft reply"] == draft.output["text"]
