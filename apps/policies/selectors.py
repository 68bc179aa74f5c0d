"""Reads about policies. Every selector takes the workspace and only sees its objects."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Max, QuerySet
from django.http import Http404

from apps.core.generation_cache import GenerationCache

from .models import Policy, PolicyEvaluation, PolicyTestCase, PolicyVersion


def policy_list(*, workspace: Any) -> QuerySet[Policy]:
    """The workspace's policies with their latest version number and test count."""
    return Policy.objects.filter(workspace=workspace).annotate(
        latest_number=Max("versions__number"), test_count=Count("test_cases", distinct=True)
    )


def policy_get(*, workspace: Any, slug: str) -> Policy:
    """The workspace's policy named ``slug``; Http404 when there is none in this workspace."""
    policy = Policy.objects.filter(workspace=workspace, slug=slug).first()
    if policy is None:
        raise Http404("No such policy.")
    return policy


def policy_version_list(*, policy: Policy) -> QuerySet[PolicyVersion]:
    return policy.versions.select_related("published_by").order_by("-number")


def policy_version_by_digest(*, workspace: Any, slug: str, sha256: str) -> PolicyVersion | None:
    """The published version whose source has ``sha256`` (what a decision records)."""
    if not slug or not sha256:
        return None
    return (
        PolicyVersion.objects.filter(policy__workspace=workspace, policy__slug=slug, sha256=sha256)
        .select_related("policy")
        .order_by("-number")
        .first()
    )


def policy_version_get(*, policy: Policy, number: int) -> PolicyVersion:
    version = policy.versions.filter(number=number).first()
    if version is None:
        raise Http404("No such version.")
    return version


def policy_latest_version(*, policy: Policy) -> PolicyVersion | None:
    return policy.versions.order_by("-number").first()


# The latest published version of each (workspace, slug), kept by each process and
# checked against a generation number in Redis that every change to policies moves
# (``PUBLISHED.changed_in_transaction``, connected to the models' signals): a GET instead
# of a query per evaluation.
PUBLISHED = GenerationCache("policies")
PUBLISHED_GENERATION_KEY = PUBLISHED.key


def policy_published_source(*, workspace_id: Any, slug: str) -> dict[str, Any] | None:
    """slug, package, source and sha256 of the latest published version of the
    workspace's policy ``slug``, or None when it has none (a query when not cached)."""
    found = PUBLISHED.get(
        (str(workspace_id), slug),
        lambda: (
            PolicyVersion.objects.filter(policy__workspace_id=workspace_id, policy__slug=slug)
            .order_by("-number")
            .values("policy_id", "package", "source", "sha256")
            .first()
        ),
    )
    return dict(found) if found is not None else None


def policy_for_gate(*, workspace_id: Any, gate: str) -> Policy | None:
    return Policy.objects.filter(workspace_id=workspace_id, gate=gate).first()


def policy_test_case_list(*, policy: Policy) -> QuerySet[PolicyTestCase]:
    return policy.test_cases.order_by("name")


def policy_test_case_get(*, policy: Policy, test_id: Any) -> PolicyTestCase:
    test_case = policy.test_cases.filter(id=test_id).first()
    if test_case is None:
        raise Http404("No such test case.")
    return test_case


def policy_evaluation_list(
    *,
    workspace: Any,
    policy_slug: str = "",
    allow: bool | None = None,
    source: str = "",
    version: str = "",
    input_digest: str = "",
) -> QuerySet[PolicyEvaluation]:
    """The decision log, newest first, filtered by any of: policy slug, verdict, requester
    (``source`` substring, e.g. a run id), version hash prefix, input digest."""
    evaluations = PolicyEvaluation.objects.filter(workspace=workspace)
    if policy_slug:
        evaluations = evaluations.filter(policy_slug=policy_slug)
    if allow is not None:
        evaluations = evaluations.filter(allow=allow)
    if source:
        evaluations = evaluations.filter(source__icontains=source)
    if version:
        evaluations = evaluations.filter(version__startswith=version)
    if input_digest:
        evaluations = evaluations.filter(input_digest=input_digest)
    return evaluations.order_by("-created_at")


def policy_usage(*, policy: Policy) -> dict[str, Any]:
    """Where the policy is used: the gate it decides and the flows (draft or published)
    with a policy.evaluate block naming it."""
    from apps.flows.selectors import flows_using

    flows = flows_using(
        workspace=policy.workspace, block_type="policy.evaluate", config={"policy": policy.slug}
    )
    return {"gate": policy.gate, "flows": list(flows)}
