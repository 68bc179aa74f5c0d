"""Policies as code: a policy, its tests and its version history as one JSON document
(``<slug>.policy.json``), so a team keeps policies in git and loads them in CI.

Importing a document sets the policy's draft and makes its tests exactly the document's
(created when the slug is new); with ``publish`` it then publishes the draft, which must
compile and pass those tests, or nothing of the import is kept. Versions in a document are
informational: history is never rewritten, a publish adds a version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from .engine import PolicyError
from .models import Policy, PolicyVersion
from .selectors import policy_latest_version
from .services import (
    PolicyValidationError,
    policy_create,
    policy_draft_save,
    policy_publish,
    policy_test_case_delete,
    policy_test_case_save,
    policy_tests_run,
)

SCHEMA = "flowgate/policy@1"


def policy_document(policy: Policy) -> dict[str, Any]:
    """The policy as a document: draft source, tests and (read-only) versions."""
    return {
        "schema": SCHEMA,
        "slug": policy.slug,
        "name": policy.name,
        "description": policy.description,
        "gate": policy.gate,
        "source": policy.draft_source,
        "tests": [
            {"name": t.name, "rule": t.rule, "input": t.input, "expected": t.expected}
            for t in policy.test_cases.order_by("name")
        ],
        "versions": [version_summary(v) for v in policy.versions.order_by("number")],
    }


def version_summary(version: PolicyVersion) -> dict[str, Any]:
    return {
        "number": version.number,
        "sha256": version.sha256,
        "note": version.note,
        "published_by": str(version.published_by) if version.published_by else None,
        "published_at": version.published_at.isoformat(),
    }


def _checked(document: Any) -> dict[str, Any]:
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise PolicyValidationError(f"Not a policy document: 'schema' must be {SCHEMA!r}.")
    for key in ("slug", "source"):
        if not isinstance(document.get(key), str) or not document[key].strip():
            raise PolicyValidationError(f"The document needs a {key!r} string.")
    tests = document.get("tests", [])
    if not isinstance(tests, list) or not all(
        isinstance(test, dict) and isinstance(test.get("name"), str) for test in tests
    ):
        raise PolicyValidationError("'tests' must be a list of objects with a 'name'.")
    return document


@dataclass(frozen=True)
class Imported:
    policy: Policy
    created: bool
    version: PolicyVersion | None  # the version the import published, if any


@transaction.atomic
def policy_import(
    *, workspace: Any, actor: Any, document: Any, publish: bool = False, note: str = ""
) -> Imported:
    """Load a policy document (see the module doc). Raises PolicyValidationError."""
    document = _checked(document)
    policy = Policy.objects.filter(workspace=workspace, slug=document["slug"]).first()
    created = policy is None
    if policy is None:
        policy = policy_create(
            workspace=workspace,
            actor=actor,
            slug=document["slug"],
            name=str(document.get("name") or document["slug"])[:120],
            source=document["source"],
            description=str(document.get("description") or ""),
            gate=str(document.get("gate") or ""),
        )
    else:
        policy_draft_save(policy=policy, actor=actor, source=document["source"])
    _replace_tests(policy, actor, document.get("tests", []))
    version = None
    latest = policy_latest_version(policy=policy)
    if publish and (latest is None or latest.source != policy.draft_source):
        version = policy_publish(policy=policy, actor=actor, note=note or "imported")
    return Imported(policy, created, version)


def _replace_tests(policy: Policy, actor: Any, tests: list[dict[str, Any]]) -> None:
    wanted = {test["name"]: test for test in tests}
    for existing in policy.test_cases.all():
        if existing.name not in wanted:
            policy_test_case_delete(test_case=existing, actor=actor)
    current = {test.name: test for test in policy.test_cases.all()}
    for name, test in wanted.items():
        stored = current.get(name)
        same = stored is not None and (stored.rule, stored.input, stored.expected) == (
            test.get("rule"),
            test.get("input"),
            test.get("expected"),
        )
        if not same:
            policy_test_case_save(
                policy=policy,
                actor=actor,
                name=name,
                rule=str(test.get("rule") or ""),
                input=test.get("input", {}),
                expected=test.get("expected"),
                test_case=stored,
            )


def policy_test_report(policy: Policy) -> dict[str, Any]:
    """Run the policy's tests on its draft; ``passed`` is true when every one passes."""
    try:
        outcomes = policy_tests_run(policy=policy)
    except PolicyError as error:  # the draft does not load: every test fails
        return {"policy": policy.slug, "passed": False, "error": str(error), "results": []}
    results = [
        {
            "name": outcome.test.name,
            "passed": outcome.passed,
            "expected": outcome.test.expected,
            "actual": outcome.actual,
            "error": outcome.error,
        }
        for outcome in outcomes
    ]
    return {"policy": policy.slug, "passed": all(r["passed"] for r in results), "results": results}
