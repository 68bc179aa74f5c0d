"""Writes and side effects for policies: drafts, tests, publishing, rollback, evaluation.

Every published version is immutable; publishing requires the policy to compile and all its
test cases to pass (evaluated in the bounded sandbox). Every evaluation a caller asks for is
logged as a ``PolicyEvaluation``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max

from apps.audit.redaction import redact_for_workspace
from apps.audit.services import audit_record
from apps.core import batch_rows

from . import sandbox
from .decision import Decision
from .defaults import SHIPPED, ShippedPolicy
from .engine import (
    RULE_NAME,
    CompileError,
    PolicyError,
    PolicySource,
    canonical_json,
    compile_check,
    current_backend,
    evaluate,
    package_of,
    source_digest,
)
from .models import Policy, PolicyEvaluation, PolicyTestCase, PolicyVersion
from .redaction import redact
from .selectors import policy_latest_version, policy_published_source

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,59}$")


class PolicyValidationError(Exception):
    """The request cannot be carried out; ``errors`` (compile errors or messages) say why."""

    def __init__(self, message: str, *, errors: list[Any] | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or []


@dataclass(frozen=True)
class TestOutcome:
    test: PolicyTestCase
    passed: bool
    actual: Any = None
    error: str = ""


@dataclass(frozen=True)
class PlaygroundResult:
    decision: Decision
    value: Any = None
    covered_lines: list[int] = field(default_factory=list)
    fired: dict[str, Any] = field(default_factory=dict)


def _source_of(policy: Policy, source: str | None = None) -> PolicySource:
    return PolicySource.from_text(
        slug=policy.slug, source=policy.draft_source if source is None else source
    )


@transaction.atomic
def policy_create(
    *,
    workspace: Any,
    actor: Any,
    slug: str,
    name: str,
    source: str,
    description: str = "",
    gate: str = "",
) -> Policy:
    """Create a policy with ``source`` as its draft. Raises PolicyValidationError for a bad
    or taken slug or a source without a package; compile errors do not stop a draft."""
    if not SLUG.match(slug):
        raise PolicyValidationError("Use lowercase letters, digits, - and _ for the slug.")
    if not package_of(source):
        raise PolicyValidationError("The policy must start with a package declaration.")
    try:
        with transaction.atomic():
            policy = Policy.objects.create(
                workspace=workspace,
                slug=slug,
                name=name,
                description=description,
                package=package_of(source),
                draft_source=source,
                gate=gate,
            )
    except IntegrityError:
        raise PolicyValidationError(f"A policy named {slug!r} already exists here.") from None
    audit_record(
        workspace_id=workspace.id,
        action="policy.created",
        actor=actor,
        object_type="policy",
        object_id=policy.id,
        summary=f"created policy {slug}",
    )
    return policy


def policy_draft_save(*, policy: Policy, actor: Any, source: str) -> list[CompileError]:
    """Save the editor's source as the draft (even when it does not compile, so no work is
    lost) and return its compile errors, each with line and column."""
    errors = compile_check(source)
    policy.draft_source = source
    policy.package = package_of(source) or policy.package
    policy.save(update_fields=["draft_source", "package", "updated_at"])
    return errors


def policy_test_case_save(
    *,
    policy: Policy,
    actor: Any,
    name: str,
    rule: str,
    input: Any,
    expected: Any,
    test_case: PolicyTestCase | None = None,
) -> PolicyTestCase:
    """Create (or update ``test_case``) a unit test: ``rule`` for ``input`` gives ``expected``."""
    if not RULE_NAME.match(rule):
        raise PolicyValidationError(f"{rule!r} is not a rule name.")
    if not isinstance(input, dict):
        raise PolicyValidationError("The test input must be a JSON object.")
    test_case = test_case or PolicyTestCase(policy=policy)
    test_case.name, test_case.rule, test_case.input, test_case.expected = (
        name,
        rule,
        input,
        expected,
    )
    created = test_case._state.adding
    try:
        with transaction.atomic():
            test_case.save()
            # The test cases are what publishing must pass: changing them is audited.
            _audit_test_case(test_case, actor, "added" if created else "changed")
    except IntegrityError:
        raise PolicyValidationError(f"A test named {name!r} already exists.") from None
    return test_case


def policy_test_case_delete(*, test_case: PolicyTestCase, actor: Any) -> None:
    with transaction.atomic():
        _audit_test_case(test_case, actor, "deleted")
        test_case.delete()


def _audit_test_case(test_case: PolicyTestCase, actor: Any, change: str) -> None:
    policy = test_case.policy
    audit_record(
        workspace_id=policy.workspace_id,
        action=f"policy.test_{change}",
        actor=actor,
        object_type="policy",
        object_id=policy.id,
        summary=f"{change} test {test_case.name!r} of {policy.slug}",
        data={
            "policy": policy.slug,
            "test": test_case.name,
            "rule": test_case.rule,
            "input": test_case.input,
            "expected": test_case.expected,
        },
    )


def policy_tests_run(*, policy: Policy, source: str | None = None) -> list[TestOutcome]:
    """Run the policy's test cases against ``source`` (the draft by default) in the
    sandbox. Raises PolicyError when the policy does not load or exceeds its bounds."""
    tests = list(policy.test_cases.order_by("name"))
    if not tests:
        return []
    outcomes = sandbox.run_cases(
        policy=_source_of(policy, source), cases=[(test.rule, test.input) for test in tests]
    )
    return [
        TestOutcome(
            test=test,
            passed=not outcome.error
            and canonical_json(outcome.value) == canonical_json(test.expected),
            actual=outcome.value,
            error=outcome.error,
        )
        for test, outcome in zip(tests, outcomes, strict=True)
    ]


def policy_publish(
    *, policy: Policy, actor: Any, note: str = "", source: str | None = None, run_tests: bool = True
) -> PolicyVersion:
    """Publish ``source`` (the draft by default) as the next immutable version.

    Preconditions checked here: it compiles, and (``run_tests``) every test case passes.
    The version is pushed to the OPA server when one is configured. Raises
    PolicyValidationError with the compile errors or failing tests; nothing is published then.
    """
    source = policy.draft_source if source is None else source
    latest = policy_latest_version(policy=policy)
    if latest is not None and latest.sha256 == source_digest(source):
        raise PolicyValidationError(
            f"Nothing to publish: the draft is the same as v{latest.number}, which is live."
        )
    errors = compile_check(source)
    if errors:
        raise PolicyValidationError("The policy does not compile.", errors=errors)
    if run_tests:
        try:
            failures = [
                outcome
                for outcome in policy_tests_run(policy=policy, source=source)
                if not outcome.passed
            ]
        except PolicyError as error:
            raise PolicyValidationError(str(error), errors=[str(error)]) from None
        if failures:
            raise PolicyValidationError(
                f"{len(failures)} test(s) failed.",
                errors=[
                    f"{outcome.test.name}: "
                    f"{outcome.error or 'got ' + canonical_json(outcome.actual)}"
                    for outcome in failures
                ],
            )
    try:
        current_backend().publish(PolicySource.from_text(slug=policy.slug, source=source))
    except PolicyError as error:
        raise PolicyValidationError(str(error), errors=[str(error)]) from None
    with transaction.atomic():
        locked = Policy.objects.select_for_update().get(pk=policy.pk)
        number = (locked.versions.aggregate(last=Max("number"))["last"] or 0) + 1
        version = PolicyVersion.objects.create(
            policy=locked,
            number=number,
            source=source,
            package=package_of(source),
            sha256=source_digest(source),
            rules=_rules_of(source),
            note=note[:300],
            published_by=actor,
        )
        audit_record(
            workspace_id=policy.workspace_id,
            action="policy.published",
            actor=actor,
            object_type="policy",
            object_id=policy.id,
            summary=f"published {policy.slug} v{number}",
            data={
                "policy": policy.slug,
                "version": number,
                "sha256": version.sha256,
                "note": note[:300],
            },
        )
    return version


def policy_rollback(*, policy: Policy, actor: Any, version: PolicyVersion) -> PolicyVersion:
    """Publish ``version``'s source again as a new version and make it the draft. Tests are
    not required to pass (today's tests may postdate the old version); it must compile."""
    new_version = policy_publish(
        policy=policy,
        actor=actor,
        source=version.source,
        run_tests=False,
        note=f"rollback to v{version.number}",
    )
    policy.draft_source, policy.package = version.source, version.package
    policy.save(update_fields=["draft_source", "package", "updated_at"])
    return new_version


def _rules_of(source: str) -> list[str]:
    from .engine import limits, new_regorus_engine, rule_names

    return rule_names(new_regorus_engine(source, max_source_bytes=limits()["max_source_bytes"]))


def policy_evaluation_log(
    *,
    workspace_id: Any,
    policy_id: Any,
    rule: str,
    input: Any,
    decision: Decision,
    source: str,
    backend: str,
) -> PolicyEvaluation:
    """Record one evaluation in the decision log (the input is redacted of credentials,
    personal data and the fields the workspace classified as sensitive). In a flow run the
    row is inserted with the engine's step batch, otherwise at once."""
    classified = redact_for_workspace(workspace_id, input)
    row = batch_rows.new_row(
        PolicyEvaluation,
        workspace_id=workspace_id,
        policy_id=policy_id,
        policy_slug=decision.policy[:60],
        version=decision.version,
        rule=rule[:100],
        input_digest=hashlib.sha256(canonical_json(input).encode()).hexdigest(),
        input=redact(classified),
        result=redact(redact_for_workspace(workspace_id, decision.result)),
        reasons=decision.reasons[:50],
        allow=decision.allow,
        error=decision.error[:2000],
        duration_ms=decision.duration_ms,
        backend=backend,
        source=source[:200],
    )
    return batch_rows.insert(row)


def policy_evaluate(
    *, workspace_id: Any, slug: str, rule: str, input: Any, source: str
) -> Decision:
    """Evaluate the latest published version of the workspace's policy ``slug`` with the
    configured backend and log it. Fails closed: no published version is a denial."""
    published = policy_published_source(workspace_id=workspace_id, slug=slug)
    backend = current_backend()
    if published is None:
        decision = Decision.deny(
            f"policy {slug!r} has no published version", policy=slug, error="not published"
        )
        policy_id = None
    else:
        policy = PolicySource(
            slug=slug,
            package=published["package"],
            source=published["source"],
            version=published["sha256"],
        )
        decision = evaluate(policy, rule, input, backend=backend)
        policy_id = published["policy_id"]
    policy_evaluation_log(
        workspace_id=workspace_id,
        policy_id=policy_id,
        rule=rule,
        input=input,
        decision=decision,
        source=source,
        backend=backend.name,
    )
    return decision


def policy_playground_run(
    *, policy: Policy, actor: Any, rule: str, input: Any, source: str | None = None
) -> PlaygroundResult:
    """Evaluate ``rule`` of ``source`` (the draft by default) for ``input`` in the sandbox,
    with coverage and the rules that fired. Logged with source "playground"."""
    policy_source = _source_of(policy, source)
    if not RULE_NAME.match(rule):
        raise PolicyValidationError(f"{rule!r} is not a rule name.")
    if not isinstance(input, dict):
        raise PolicyValidationError("The input must be a JSON object.")
    try:
        [outcome] = sandbox.run_cases(policy=policy_source, cases=[(rule, input)], coverage=True)
    except PolicyError as error:
        decision = Decision.deny(
            str(error), policy=policy.slug, version=policy_source.version, error=str(error)
        )
        outcome = sandbox.CaseOutcome(error=str(error))
    else:
        from .engine import decision_from_value

        if outcome.error:
            decision = Decision.deny(
                f"policy evaluation failed: {outcome.error}",
                policy=policy.slug,
                version=policy_source.version,
                error=outcome.error,
            )
        else:
            decision = decision_from_value(
                outcome.value, policy=policy_source, rule=rule, duration_ms=outcome.duration_ms
            )
    policy_evaluation_log(
        workspace_id=policy.workspace_id,
        policy_id=policy.id,
        rule=rule,
        input=input,
        decision=decision,
        source=f"playground ({actor})",
        backend="sandbox",
    )
    return PlaygroundResult(
        decision=decision,
        value=outcome.value,
        covered_lines=outcome.covered_lines,
        fired=outcome.fired,
    )


def policy_defaults_ensure(
    *, workspace: Any, actor: Any = None, slugs: tuple[str, ...] | None = None
) -> list[Policy]:
    """Create the shipped policies (``slugs``, or all) that the workspace lacks, with their
    test cases and a first published version. Idempotent; existing policies are left as
    the workspace's admins made them."""
    created = []
    for shipped in SHIPPED:
        if slugs is not None and shipped.slug not in slugs:
            continue
        if Policy.objects.filter(workspace=workspace, slug=shipped.slug).exists():
            continue
        created.append(_install_shipped(workspace=workspace, actor=actor, shipped=shipped))
    return created


def _install_shipped(*, workspace: Any, actor: Any, shipped: ShippedPolicy) -> Policy:
    with transaction.atomic():
        policy = policy_create(
            workspace=workspace,
            actor=actor,
            slug=shipped.slug,
            name=shipped.name,
            source=shipped.source,
            description=shipped.description,
            gate=shipped.gate,
        )
        for test in shipped.tests:
            policy_test_case_save(
                policy=policy,
                actor=actor,
                name=test.name,
                rule=test.rule,
                input=test.input,
                expected=test.expected,
            )
        # Shipped policies are tested in this repository's suite on both backends.
        policy_publish(policy=policy, actor=actor, note="shipped default", run_tests=False)
    return policy


class WorkspacePolicies:
    """What blocks get from ``ctx.service("policies")``: evaluation of the workspace's
    published policies, each call logged."""

    def __init__(self, workspace_id: Any) -> None:
        self.workspace_id = workspace_id

    def evaluate(self, *, policy: str, rule: str, input: Any, source: str = "flow") -> Decision:
        return policy_evaluate(
            workspace_id=self.workspace_id, slug=policy, rule=rule, input=input, source=source
        )

    def gate(self, *, gate: str, input: dict[str, Any]) -> Decision:
        """The workspace's gate policy for ``gate`` (``gates.evaluate_gate``), audited."""
        from .gates import evaluate_gate

        return evaluate_gate(workspace_id=self.workspace_id, gate=gate, input=input)
