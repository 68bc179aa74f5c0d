"""Drafts, test cases, publishing, immutability, rollback, the sandbox and the decision log."""

from __future__ import annotations

import httpx
import pytest

from apps.audit.models import AuditEvent
from apps.policies import services
from apps.policies.defaults import SHIPPED
from apps.policies.models import PolicyEvaluation
from apps.policies.opa import deployed_package
from apps.policies.services import PolicyValidationError

V1 = 'package demo.limits\n\nroute := "approve" if input.amount < 100\n\nelse := "review"\n'
V2 = 'package demo.limits\n\nroute := "approve" if input.amount < 500\n\nelse := "review"\n'


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
        input={"amount": 50},
        expected="approve",
    )
    return policy


def test_draft_save_returns_errors_with_location_and_keeps_the_text(policy, owner):
    errors = services.policy_draft_save(
        policy=policy, actor=owner, source="package demo.limits\n\nroute := \n"
    )
    assert errors and errors[0].line == 4
    policy.refresh_from_db()
    assert policy.draft_source.endswith("route := \n")


def test_publish_refuses_a_policy_that_does_not_compile(policy, owner):
    services.policy_draft_save(
        policy=policy, actor=owner, source="package demo.limits\n\nroute := \n"
    )
    with pytest.raises(PolicyValidationError) as raised:
        services.policy_publish(policy=policy, actor=owner, note="broken")
    assert raised.value.errors[0].line == 4
    assert policy.versions.count() == 0


def test_publish_refuses_when_a_test_fails(policy, owner):
    services.policy_test_case_save(
        policy=policy,
        actor=owner,
        name="mid",
        rule="route",
        input={"amount": 300},
        expected="approve",
    )
    with pytest.raises(PolicyValidationError) as raised:
        services.policy_publish(policy=policy, actor=owner, note="v1")
    assert "mid" in raised.value.errors[0]
    assert policy.versions.count() == 0


def test_publish_creates_immutable_numbered_versions_and_audits(policy, owner, workspace):
    first = services.policy_publish(policy=policy, actor=owner, note="first")
    services.policy_draft_save(policy=policy, actor=owner, source=V2)
    second = services.policy_publish(policy=policy, actor=owner, note="second")
    assert (first.number, second.number) == (1, 2)
    assert first.rules == ["route"] and len(second.sha256) == 64
    with pytest.raises(ValueError, match="immutable"):
        first.save()
    assert (
        AuditEvent.objects.filter(workspace_id=workspace.id, action="policy.published").count() == 2
    )


def test_rollback_publishes_the_old_source_as_a_new_version(policy, owner):
    first = services.policy_publish(policy=policy, actor=owner, note="first")
    services.policy_draft_save(policy=policy, actor=owner, source=V2)
    services.policy_publish(policy=policy, actor=owner, note="second")
    third = services.policy_rollback(policy=policy, actor=owner, version=first)
    assert third.number == 3 and third.sha256 == first.sha256 and third.note == "rollback to v1"
    policy.refresh_from_db()
    assert policy.draft_source == V1


def test_evaluation_uses_the_latest_published_version_and_is_logged(
    backend, policy, owner, workspace
):
    services.policy_publish(policy=policy, actor=owner)
    decision = services.policy_evaluate(
        workspace_id=workspace.id,
        slug="limits",
        rule="route",
        input={"amount": 300, "email": "a@b.c"},
        source="test",
    )
    assert decision.result == "review"
    services.policy_draft_save(policy=policy, actor=owner, source=V2)
    services.policy_publish(policy=policy, actor=owner)
    assert (
        services.policy_evaluate(
            workspace_id=workspace.id,
            slug="limits",
            rule="route",
            input={"amount": 300},
            source="test",
        ).result
        == "approve"
    )
    logged = PolicyEvaluation.objects.filter(workspace=workspace).order_by("created_at").first()
    assert logged.input == {"amount": 300, "email": "[redacted]"}
    assert len(logged.input_digest) == 64 and logged.version == decision.version
    assert logged.backend == backend.name and logged.source == "test"


def test_publish_pushes_the_version_to_the_opa_server(opa_server, settings, policy, owner):
    settings.FLOWGATE = {**settings.FLOWGATE, "OPA_URL": opa_server}
    version = services.policy_publish(policy=policy, actor=owner)
    response = httpx.get(f"{opa_server}/v1/policies/flowgate/{version.sha256}")
    assert response.status_code == 200
    assert (
        f"package {deployed_package(services._source_of(policy))}"
        in response.json()["result"]["raw"]
    )


def test_unpublished_policy_denies(workspace, policy):
    decision = services.policy_evaluate(
        workspace_id=workspace.id, slug="limits", rule="route", input={}, source="t"
    )
    assert decision.allow is False and "no published version" in decision.reasons[0]


def test_other_workspace_cannot_evaluate_this_policy(policy, owner, other_workspace):
    services.policy_publish(policy=policy, actor=owner)
    decision = services.policy_evaluate(
        workspace_id=other_workspace.id,
        slug="limits",
        rule="route",
        input={"amount": 1},
        source="t",
    )
    assert decision.allow is False


def test_tests_run_reports_pass_and_fail(policy, owner):
    services.policy_test_case_save(
        policy=policy,
        actor=owner,
        name="wrong",
        rule="route",
        input={"amount": 50},
        expected="review",
    )
    outcomes = {outcome.test.name: outcome for outcome in services.policy_tests_run(policy=policy)}
    assert outcomes["small"].passed and not outcomes["wrong"].passed
    assert outcomes["wrong"].actual == "approve"


def test_playground_shows_result_time_and_fired_rules(policy, owner):
    result = services.policy_playground_run(
        policy=policy, actor=owner, rule="route", input={"amount": 5}
    )
    assert result.decision.result == "approve" and result.decision.allow
    assert result.fired == {"route": "approve"}
    assert 3 in result.covered_lines
    assert result.decision.duration_ms >= 0


def test_looping_policy_is_stopped_with_a_clear_error(policy, owner, settings):
    settings.FLOWGATE = {**settings.FLOWGATE, "POLICY_TIMEOUT_MS": 200}
    looping = (
        "package demo.limits\n\nroute := count([x | some x in numbers.range(1, 6000); "
        "some y in numbers.range(1, 6000); x * y == -1])\n"
    )
    result = services.policy_playground_run(
        policy=policy, actor=owner, rule="route", input={}, source=looping
    )
    assert result.decision.allow is False
    assert "did not finish" in result.decision.error


def test_policy_building_huge_collections_is_stopped(policy, owner):
    huge = "package demo.limits\n\nroute := count([x | some x in numbers.range(1, 300000000)])\n"
    result = services.policy_playground_run(
        policy=policy, actor=owner, rule="route", input={}, source=huge
    )
    assert result.decision.allow is False
    assert "ran out of memory" in result.decision.error


def test_defaults_are_installed_once(workspace, owner):
    created = services.policy_defaults_ensure(workspace=workspace, actor=owner)
    assert {policy.slug for policy in created} == {
        "model_promotion",
        "canary_analysis",
        "flow_publish",
        "ai_provider",
        "mcp_tool_call",
        "agent_tools",
        "support_triage",
        "expense_limits",
        "claims",
    }
    assert all(policy.versions.count() == 1 for policy in created)
    assert services.policy_defaults_ensure(workspace=workspace, actor=owner) == []


@pytest.mark.parametrize("shipped", SHIPPED, ids=lambda shipped: shipped.slug)
def test_the_playground_explains_every_shipped_policy(workspace, owner, shipped):
    """Coverage and the rules that fired, for each policy Flowgate ships: the sandbox's
    memory cap once left no room to list the rules of any but the smallest."""
    (policy,) = services.policy_defaults_ensure(
        workspace=workspace, actor=owner, slugs=(shipped.slug,)
    )
    case = shipped.tests[0]
    result = services.policy_playground_run(
        policy=policy, actor=owner, rule=case.rule, input=case.input
    )
    assert result.decision.error in (None, "")
    assert result.value == case.expected
    assert result.fired and result.covered_lines


def test_changes_to_the_tests_publishing_must_pass_are_audited(policy, owner):
    case = services.policy_test_case_save(
        policy=policy,
        actor=owner,
        name="large",
        rule="route",
        input={"amount": 900},
        expected="review",
    )
    services.policy_test_case_delete(test_case=case, actor=owner)
    events = AuditEvent.objects.filter(object_id=str(policy.id)).order_by("created_at")
    assert [(event.action, event.data.get("test")) for event in events][-3:] == [
        ("policy.test_added", "small"),
        ("policy.test_added", "large"),
        ("policy.test_deleted", "large"),
    ]
    assert events.last().actor_id == owner.id and events.last().data["input"] == {"amount": 900}


def test_publishing_what_is_already_live_is_refused(policy, owner):
    services.policy_publish(policy=policy, actor=owner)
    with pytest.raises(PolicyValidationError) as refused:
        services.policy_publish(policy=policy, actor=owner, note="again")
    assert "the draft is the same as v1" in refused.value.message
    assert policy.versions.count() == 1
