"""Policy pages: admins edit, builders view, outsiders see nothing."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.policies import services
from apps.policies.models import PolicyVersion

V1 = 'package demo.limits\n\nroute := "approve" if input.amount < 100\n\nelse := "review"\n'


@pytest.fixture
def policy(workspace, owner):
    policy = services.policy_create(
        workspace=workspace, actor=owner, slug="limits", name="Limits", source=V1
    )
    services.policy_test_case_save(
        policy=policy,
        actor=owner,
        name="small",
        rule="route",
        input={"amount": 5},
        expected="approve",
    )
    return policy


def url(name, **kwargs):
    return reverse(f"policies:{name}", kwargs={"workspace_slug": "acme", **kwargs})


def test_list_shows_policies_with_a_fixed_number_of_queries(
    client, member, policy, django_assert_max_num_queries
):
    services.policy_defaults_ensure(workspace=policy.workspace)
    client.force_login(member)
    with django_assert_max_num_queries(8):
        response = client.get(url("list"))
    assert response.status_code == 200
    assert b"Limits" in response.content and b"Model promotion gate" in response.content
    assert b"New policy" not in response.content


def test_builder_can_view_but_not_edit(client, member, policy):
    client.force_login(member)
    assert client.get(url("detail", policy_slug="limits")).status_code == 200
    assert client.post(url("draft_save", policy_slug="limits"), {"source": V1}).status_code == 403
    assert client.post(url("publish", policy_slug="limits"), {"note": "x"}).status_code == 403
    assert client.get(url("create")).status_code == 403


def test_outsider_gets_404(client, outsider, policy):
    client.force_login(outsider)
    assert client.get(url("list")).status_code == 404
    assert client.get(url("detail", policy_slug="limits")).status_code == 404


def test_admin_creates_a_policy(client, owner):
    client.force_login(owner)
    response = client.post(url("create"), {"name": "Refunds", "slug": "refunds", "description": ""})
    assert response.status_code == 302
    assert client.get(response["Location"]).status_code == 200


def test_saving_a_broken_draft_shows_errors_with_location(client, owner, policy):
    client.force_login(owner)
    response = client.post(
        url("draft_save", policy_slug="limits"),
        {"source": "package demo.limits\n\nroute := \n"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert b'data-line="4"' in response.content and b"nothing was published" in response.content


def test_publish_then_diff_and_rollback(client, owner, policy):
    client.force_login(owner)
    assert client.post(url("publish", policy_slug="limits"), {"note": "first"}).status_code == 302
    client.post(url("draft_save", policy_slug="limits"), {"source": V1.replace("100", "200")})
    assert client.post(url("publish", policy_slug="limits"), {"note": "second"}).status_code == 302
    diff = client.get(url("diff", policy_slug="limits"), {"from": 1, "to": 2})
    assert b"diff-removed" in diff.content and b"200" in diff.content
    assert client.post(url("rollback", policy_slug="limits", number=1)).status_code == 302
    assert PolicyVersion.objects.filter(policy=policy).count() == 3


def test_publish_with_failing_test_is_refused_and_nothing_published(client, owner, policy):
    client.force_login(owner)
    client.post(
        url("draft_save", policy_slug="limits"), {"source": V1.replace('"approve"', '"nope"')}
    )
    response = client.post(url("publish", policy_slug="limits"), {"note": "bad"})
    assert response.status_code == 400 and b"test(s) failed" in response.content
    assert not PolicyVersion.objects.filter(policy=policy).exists()


def test_tests_run_in_the_page(client, member, policy):
    client.force_login(member)
    response = client.post(url("tests_run", policy_slug="limits"), HTTP_HX_REQUEST="true")
    assert b"test-pass" in response.content


def test_playground_evaluates_and_reports_time_and_fired_rules(client, owner, policy):
    client.force_login(owner)
    response = client.post(
        url("playground", policy_slug="limits"),
        {"rule": "route", "input": '{"amount": 500}', "source": ""},
    )
    assert response.status_code == 200
    assert (
        b"review" in response.content
        and b" ms" in response.content
        and b"Rules that fired" in response.content
    )


def test_playground_shows_what_the_rule_answered_not_allow(client, owner, policy):
    client.force_login(owner)
    source = 'package demo.limits\n\nroute := "reject"\n'
    response = client.post(
        url("playground", policy_slug="limits"),
        {"rule": "route", "input": '{"amount": 500}', "source": source},
    )
    html = response.content.decode()
    assert '<span class="status status-deny" data-verdict="deny">reject</span>' in html
    assert ">allow<" not in html


def test_playground_rejects_input_that_is_not_json(client, owner, policy):
    client.force_login(owner)
    response = client.post(
        url("playground", policy_slug="limits"), {"rule": "route", "input": "{amount: 5"}
    )
    # 422: the page's htmx swaps it into the result area, where the user is looking.
    assert response.status_code == 422
    assert b'role="alert"' in response.content and b"not valid JSON" in response.content


def test_decision_log_is_searchable(client, owner, policy, workspace):
    services.policy_publish(policy=policy, actor=owner)
    services.policy_evaluate(
        workspace_id=workspace.id,
        slug="limits",
        rule="route",
        input={"amount": 1},
        source="flow run R1 node n",
    )
    client.force_login(owner)
    response = client.get(url("evaluations"), {"source": "R1", "verdict": "allow"})
    assert b"flow run R1 node n" in response.content
    assert b"flow run R1" not in client.get(url("evaluations"), {"source": "R2"}).content


def test_detail_lists_the_flows_that_use_the_policy(client, member, owner, workspace, policy):
    from tests.runs.helpers import definition, node, published_flow

    using = definition(
        [
            node("start", "trigger.manual"),
            node("limit", "policy.evaluate", policy="limits", rule="route", input={"amount": "1"}),
        ],
        [("start", "limit")],
    )
    services.policy_publish(policy=policy, actor=owner)  # a flow may use published ones only
    published_flow(workspace, owner, using, name="Expense check")
    published_flow(workspace, owner, definition([node("start", "trigger.manual")]), name="Other")
    client.force_login(member)
    response = client.get(url("detail", policy_slug="limits"))
    assert b"Expense check" in response.content
    assert b"Other" not in response.content


def test_empty_json_values_are_values_in_test_cases_and_the_playground(client, owner, policy):
    """{}, [] and null are what a rule may take or return, not a missing field."""
    client.force_login(owner)
    created = client.post(
        url("test_create", policy_slug="limits"),
        {"name": "no reasons", "rule": "route", "input": "{}", "expected": "[]"},
    )
    assert created.status_code == 302
    case = policy.test_cases.get(name="no reasons")
    assert (case.input, case.expected) == ({}, [])
    detail = client.get(url("detail", policy_slug="limits"))
    # Shown as JSON, as typed: not Python's {'amount': 5}.
    assert b"<code>{&quot;amount&quot;: 5}</code>" in detail.content
    assert b"<code>[]</code>" in detail.content
    evaluated = client.post(
        url("playground", policy_slug="limits"), {"rule": "route", "input": "{}", "source": ""}
    )
    assert evaluated.status_code == 200 and b"review" in evaluated.content
    missing = client.post(
        url("test_create", policy_slug="limits"),
        {"name": "blank", "rule": "route", "input": "{}", "expected": "  "},
    )
    # The page again, the form open with what was typed and the field's error.
    assert missing.status_code == 400
    assert b"<details open>" in missing.content and b'value="blank"' in missing.content
    assert b"This field is required." in missing.content
    assert not policy.test_cases.filter(name="blank").exists()
