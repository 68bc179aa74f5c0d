"""The engine interface on both backends: same policies, same results, fail closed."""

from __future__ import annotations

import pytest

from apps.policies.defaults import SHIPPED
from apps.policies.engine import PolicySource, canonical_json, compile_check, evaluate
from apps.policies.opa import OpaServerBackend

SHIPPED_CASES = [(policy, test) for policy in SHIPPED for test in policy.tests]

SAMPLE = """package sample

allow if input.user == "ada"

verdict := {"allow": input.amount < 100, "reasons": ["amount checked"]}

route := "approve" if input.amount < 100

else := "review"

tags contains "small" if input.amount < 100

conflict := 1 if input.one

conflict := 2 if input.two
"""


def sample() -> PolicySource:
    return PolicySource.from_text(slug="sample", source=SAMPLE)


@pytest.mark.parametrize(
    ("policy", "test"), SHIPPED_CASES, ids=[f"{p.slug}: {t.name}" for p, t in SHIPPED_CASES]
)
def test_shipped_policy_tests_pass(backend, policy, test):
    decision = evaluate(
        PolicySource.from_text(slug=policy.slug, source=policy.source),
        test.rule,
        test.input,
        backend=backend,
    )
    assert not decision.error
    assert canonical_json(decision.result) == canonical_json(test.expected)


def test_boolean_rule_is_the_verdict(backend):
    assert evaluate(sample(), "allow", {"user": "ada"}, backend=backend).allow is True


def test_object_rule_gives_allow_and_reasons(backend):
    decision = evaluate(sample(), "verdict", {"amount": 500}, backend=backend)
    assert decision.allow is False
    assert decision.reasons == ["amount checked"]
    assert decision.result == {"allow": False, "reasons": ["amount checked"]}
    assert decision.version == sample().version and decision.policy == "sample"


def test_string_rule_is_a_route_and_allows(backend):
    decision = evaluate(sample(), "route", {"amount": 500}, backend=backend)
    assert (decision.allow, decision.result) == (True, "review")


def test_set_rule_is_denied_with_an_explanation(backend):
    decision = evaluate(sample(), "tags", {"amount": 5}, backend=backend)
    assert decision.allow is False
    assert "returned list" in decision.error


def test_undefined_result_denies(backend):
    decision = evaluate(sample(), "allow", {"user": "bob"}, backend=backend)
    assert decision.allow is False
    assert "undefined" in decision.error


def test_unknown_rule_denies(backend):
    decision = evaluate(sample(), "nothing_here", {}, backend=backend)
    assert decision.allow is False and decision.error


def test_evaluation_error_denies(backend):
    decision = evaluate(sample(), "conflict", {"one": True, "two": True}, backend=backend)
    assert decision.allow is False
    assert decision.error


def test_input_over_the_size_limit_denies(backend, settings):
    settings.FLOWGATE = {**settings.FLOWGATE, "POLICY_MAX_INPUT_BYTES": 1024}
    decision = evaluate(sample(), "allow", {"user": "ada", "blob": "x" * 2000}, backend=backend)
    assert decision.allow is False
    assert "byte limit" in decision.error


def test_input_size_is_its_utf8_json_size(backend, settings):
    settings.FLOWGATE = {**settings.FLOWGATE, "POLICY_MAX_INPUT_BYTES": 1000}
    fits = {"user": "ada", "note": "é" * 480}  # 960 bytes of UTF-8 in a 984-byte document
    assert evaluate(sample(), "allow", fits, backend=backend).allow is True
    over = {"user": "ada", "note": "é" * 500}
    assert "1024 bytes" in evaluate(sample(), "allow", over, backend=backend).error


def test_integers_beyond_64_bits_are_still_measured_and_evaluated(backend):
    decision = evaluate(sample(), "verdict", {"amount": 2**70}, backend=backend)
    assert not decision.error and decision.allow is False


def test_input_that_cannot_be_json_denies(backend):
    looped: dict = {"user": "ada"}
    looped["self"] = looped
    decision = evaluate(sample(), "allow", looped, backend=backend)
    assert decision.allow is False and "cannot be written as JSON" in decision.error


def test_input_that_is_not_an_object_denies(backend):
    assert evaluate(sample(), "allow", ["ada"], backend=backend).allow is False


def test_rule_name_must_be_an_identifier(backend):
    assert "not a rule name" in evaluate(sample(), "allow; x", {}, backend=backend).error


def test_slow_evaluation_in_process_is_denied_after_the_deadline(settings):
    settings.FLOWGATE = {**settings.FLOWGATE, "POLICY_TIMEOUT_MS": 10}
    slow = PolicySource.from_text(
        slug="slow",
        source="package slow\n\nallow if count([x | some x in numbers.range(1, 400000)]) > 0\n",
    )
    decision = evaluate(slow, "allow", {})
    assert decision.allow is False
    assert "over the 10 ms limit" in decision.error


def test_unreachable_opa_server_denies(settings):
    decision = evaluate(
        sample(), "allow", {"user": "ada"}, backend=OpaServerBackend("http://127.0.0.1:8299")
    )
    assert decision.allow is False
    assert "unreachable" in decision.error


def test_policy_that_does_not_compile_denies(backend):
    broken = PolicySource.from_text(slug="broken", source="package broken\n\nallow if {\n")
    decision = evaluate(broken, "allow", {}, backend=backend)
    assert decision.allow is False and decision.error


def test_compile_errors_have_line_and_column():
    [error] = compile_check("package p\n\nallow if {\n  input.a ==\n}\n")
    assert (error.line, error.column) == (5, 1)
    assert error.message == "expecting expression"


def test_unknown_function_is_a_compile_error():
    [error] = compile_check("package p\n\nallow if {\n  frobnicate(input.a)\n}\n")
    assert error.line == 4 and "frobnicate" in error.message


def test_policy_without_package_is_a_compile_error():
    [error] = compile_check("allow := true\n")
    assert "package" in error.message


def test_policy_over_the_size_limit_is_refused(settings):
    settings.FLOWGATE = {**settings.FLOWGATE, "POLICY_MAX_SOURCE_BYTES": 1024}
    [error] = compile_check("package big\n" + "x := 1\n" * 400)
    assert "limit" in error.message


def test_shipped_policies_compile():
    for policy in SHIPPED:
        assert compile_check(policy.source) == [], policy.slug
