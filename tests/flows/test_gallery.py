"""Every shipped template is a valid flow, and the ones whose blocks exist run as promised."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from apps.accounts.models import Membership
from apps.connectors.demo import demo_connections_ensure
from apps.flows.definition import validate_definition
from apps.flows.gallery import template_definition, template_list
from apps.inbox.models import ReviewTask
from apps.inbox.services import task_decide
from apps.policies.services import policy_defaults_ensure
from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.models import Run
from apps.runs.services import run_start
from tests.runs.helpers import published_flow

pytestmark = pytest.mark.django_db(transaction=True)


def test_every_template_validates_or_names_the_blocks_it_misses():
    templates = template_list()
    assert {"expense-approval"} <= {template["key"] for template in templates}
    for template in templates:
        if template["available"]:
            assert validate_definition(template_definition(template["key"])) == []


def expense_run(workspace, admin_user, body) -> Run:
    policy_defaults_ensure(workspace=workspace)
    demo_connections_ensure(workspace=workspace, actor=admin_user)  # demo-ledger: this database
    flow = published_flow(workspace, admin_user, template_definition("expense-approval"))
    run = run_start(flow=flow, trigger="webhook", payload=envelope(body), enqueue=False).run
    advance(run.id)
    run.refresh_from_db()
    return run


def ledger_rows(run: Run) -> list[tuple]:
    """What the run booked (the table is not Django's: tests leave their rows behind)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT employee, amount, category FROM demo_ledger WHERE run_id = %s", [run.id]
        )
        return [(employee, float(amount), category) for employee, amount, category in cursor]


def test_expense_within_the_limit_is_approved_and_booked_without_a_person(workspace, admin_user):
    run = expense_run(workspace, admin_user, {"employee": "kim", "amount": 40, "category": "meals"})
    assert run.status == "succeeded"
    assert run.output["status"] == "approved"
    assert not ReviewTask.objects.exists()
    assert ledger_rows(run) == [("kim", 40.0, "meals")]


def test_a_blocked_category_is_rejected_with_the_policys_reasons(workspace, admin_user):
    run = expense_run(
        workspace, admin_user, {"employee": "kim", "amount": 20, "category": "gambling"}
    )
    assert ledger_rows(run) == []
    assert run.output == {
        "status": "rejected",
        "employee": "kim",
        "reasons": ["category gambling is never reimbursed"],
    }


def test_an_expense_over_the_limit_waits_for_a_reviewer_who_approves_it(
    workspace, admin_user, reviewer_user
):
    body = {"employee": "kim", "amount": 2500, "category": "travel"}
    run = expense_run(workspace, admin_user, body)
    assert run.status == "waiting", run.error
    task = ReviewTask.objects.get(run=run)
    assert task.title == "Expense of 2500 for travel"
    assert task.description.startswith("kim claims 2500 for travel")
    assert task.data["Policy reasons"] == ["amount 2500 is over the travel limit of 2000"]

    task_decide(
        task=task,
        actor=reviewer_user,
        membership=Membership.objects.get(user=reviewer_user, workspace=workspace),
        decision="approve",
    )
    advance(run.id)
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert run.output == {"status": "approved", "employee": "kim", "amount": 2500}
    assert ledger_rows(run) == [("kim", 2500.0, "travel")]


def test_the_demo_seed_publishes_every_available_template_once(workspace, admin_user):
    from apps.connectors.demo import demo_connections_ensure
    from apps.flows.demo import seed_templates
    from apps.flows.models import Flow
    from apps.policies.services import policy_defaults_ensure

    # As seed_demo does: what the templates refer to first.
    policy_defaults_ensure(workspace=workspace, actor=admin_user)
    demo_connections_ensure(workspace=workspace, actor=admin_user)
    first = seed_templates(workspace=workspace, actor=admin_user)
    again = seed_templates(workspace=workspace, actor=admin_user)

    names = {t["name"] for t in template_list() if t["available"]}
    assert {flow.name for flow in first} == names
    assert again == []
    published = Flow.objects.filter(workspace=workspace, latest_version__isnull=False)
    assert set(published.values_list("name", flat=True)) == names


@pytest.mark.parametrize("key", [template["key"] for template in template_list()])
def test_each_template_brings_a_sample_with_every_field_it_reads(key):
    """The editor's first test run of a template uses its trigger's sample: it must hold
    every ``trigger.body`` field the flow reads, or that run fails on a missing field."""
    import re

    document = template_definition(key)
    trigger = next(n for n in document["nodes"] if n["type"].startswith("trigger."))
    read = set(re.findall(r"trigger\.body\.([A-Za-z_]\w*)", json.dumps(document)))
    assert read and read <= set(trigger["config"]["sample"])
