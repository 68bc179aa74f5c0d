"""Reads about policies. Every selector takes the workspace and only sees its objects."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any

import redis
from django.db import connection, transaction
from django.db.models import Count, Max, QuerySet
from django.http import Http404

from apps.core.redis_clients import redis_client

from .models import Policy, PolicyEvaluation, PolicyTestCase, PolicyVersion

logger = logging.getLogger(__name__)


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
# (``policies_changed``, after the commit): a GET instead of a query per evaluation. An
# entry is trusted for PUBLISHED_MAX_AGE at most, in case a change could not reach Redis.
PUBLISHED_GENERATION_KEY = "flowgate:policies:generation"
PUBLISHED_MAX_AGE = 60.0
PUBLISHED_CACHE_SIZE = 1024
_published_lock = threading.Lock()
_published: OrderedDict[tuple[str, str], tuple[bytes, float, dict[str, str] | None]] = OrderedDict()


def policy_published_source(*, workspace_id: Any, slug: str) -> dict[str, Any] | None:
    """slug, package, source and sha256 of the latest published version of the
    workspace's policy ``slug``, or None when it has none (a query when not cached)."""
    generation = None if _changed_in_this_transaction() else _published_generation()
    key = (str(workspace_id), slug)
    if generation is not None:
        with _published_lock:
            hit = _published.get(key)
        if hit is not None and hit[0] == generation and hit[1] > time.monotonic():
            return dict(hit[2]) if hit[2] is not None else None
    found: Any = (
        PolicyVersion.objects.filter(policy__workspace_id=workspace_id, policy__slug=slug)
        .order_by("-number")
        .values("policy_id", "package", "source", "sha256")
        .first()
    )
    if generation is not None:
        with _published_lock:
            _published[key] = (generation, time.monotonic() + PUBLISHED_MAX_AGE, found)
            _published.move_to_end(key)
            if len(_published) > PUBLISHED_CACHE_SIZE:
                _published.popitem(last=False)
    return dict(found) if found is not None else None


def _published_generation() -> Any:
    """The generation of published policies (None when Redis cannot say: no caching)."""
    try:
        return redis_client().get(PUBLISHED_GENERATION_KEY) or b"0"
    except redis.RedisError:
        logger.warning("policy cache: Redis unavailable, reading from Postgres", exc_info=True)
        return None


_transaction_state = threading.local()


def policy_changed_in_transaction(**_: Any) -> None:
    """A policy or a version was written (signals): this thread reads published versions
    from Postgres until its transaction ends (what it reads may be rolled back), and every
    process is told once it commits."""
    with _published_lock:
        _published.clear()
    _transaction_state.changed = True
    transaction.on_commit(policies_changed)


def _changed_in_this_transaction() -> bool:
    if not getattr(_transaction_state, "changed", False):
        return False
    if connection.in_atomic_block:
        return True
    _transaction_state.changed = False  # that transaction ended (committed or rolled back)
    return False


def policies_changed() -> None:
    """Tell every process that published policies changed: their cached versions are
    read again. Called after the commit of any change to a policy or its versions."""
    _transaction_state.changed = False
    with _published_lock:
        _published.clear()
    try:
        redis_client().incr(PUBLISHED_GENERATION_KEY)
    except redis.RedisError:  # others then notice within PUBLISHED_MAX_AGE
        logger.warning("policy cache: could not announce a change", exc_info=True)


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
