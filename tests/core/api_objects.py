"""One object of every kind the REST API's paths name, for the API-wide tests."""

from __future__ import annotations

from apps.accounts.invitations import invitation_create
from apps.accounts.services import api_token_create
from apps.connectors.services import connection_create
from apps.evaluations.services import eval_case_save, evaluation_start
from apps.flows.publish_requests import publish_request_create
from apps.mlmodels.services import promotion_request_create
from apps.monitoring.alerts import alert_raise
from apps.monitoring.services import monitor_save
from apps.policies import services as policies
from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.services import run_start
from tests.inbox.helpers import start_waiting_run
from tests.runs.helpers import definition, node, published_flow


def api_objects(workspace, admin_user, builder_user) -> dict:
    """One object of every kind a path can name, all in workspace "acme"."""
    flow = published_flow(
        workspace,
        builder_user,
        definition(
            [node("start", "trigger.manual"), node("set", "transform.set", values={"a": "1"})],
            [("start", "set")],
        ),
    )
    run = run_start(flow=flow, trigger="manual", payload=envelope({"n": 1}), enqueue=False).run
    advance(run.id)
    waiting = start_waiting_run(workspace, builder_user)
    task = waiting.review_tasks.get()
    connection = connection_create(
        workspace=workspace,
        actor=admin_user,
        name="billing-api",
        type="http_api",
        config={"auth": "bearer", "base_url": "https://billing.example.com"},
        secrets={"token": "tok-secret"},
    )
    policy = policies.policy_create(
        workspace=workspace,
        actor=admin_user,
        slug="limits",
        name="Limits",
        source="package flowgate.limits\n\ndefault allow := false\n",
    )
    # Requested by the admin the API tests act as: approving it is refused (403) before the
    # registry is asked, so these tests need no MLflow.
    promotion = promotion_request_create(
        workspace=workspace,
        actor=admin_user,
        name="claim-fraud",
        version="2",
        alias="canary",
        canary_share=20,
        note="try it on a fifth of the traffic",
    )
    publish_request = publish_request_create(flow=flow, actor=builder_user, note="please")
    invitation = invitation_create(
        workspace=workspace, actor=admin_user, email="newcomer@example.com", role="builder"
    ).invitation
    monitor = monitor_save(workspace=workspace, actor=admin_user, model_name="claim-fraud")
    alert = alert_raise(
        workspace_id=workspace.id,
        key="drift:claim-fraud",
        kind="drift",
        summary="claim-fraud: drift in v1 amount",
        details={"model": "claim-fraud"},
    )
    case = eval_case_save(flow=flow, actor=builder_user, name="one", input={}, expected={})
    evaluation = evaluation_start(
        flow=flow, actor=builder_user, baseline="published", candidate="draft"
    )
    return {
        "workspace_slug": "acme",
        "case_id": case.id,
        "evaluation_id": evaluation.id,
        "username": builder_user.username,
        "invitation_id": invitation.id,
        "request_id": publish_request.id,
        "model_name": monitor.model_name,
        "alert_id": alert.id,
        "flow_id": flow.id,
        "number": 1,
        "run_id": run.id,
        "task_id": task.id,
        "connection_id": connection.id,
        "policy_id": policy.id,
        "policy_slug": policy.slug,
        "promotion_id": promotion.id,
        "token_id": api_token_create(user=builder_user, workspace=workspace, name="CI").token.id,
    }
