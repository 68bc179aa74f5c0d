"""Policies are compiled once per process and version, and the published version is read
once per process until a policy changes (in this process or another)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.core.redis_clients import redis_client
from apps.policies import engine, selectors
from apps.policies import services as policies
from apps.policies.engine import EmbeddedBackend, PolicySource, evaluate

SOURCE = "package cache.test\n\nallow if input.amount < 100\n"
STRICT = "package cache.test\n\nallow if input.amount < 10\n"


def in_threads(count: int, work) -> list:
    results: list = []

    def run() -> None:
        results.append(work())

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return results


def test_a_source_is_checked_once_per_process_whatever_the_thread(monkeypatch):
    checks = []
    real_check = engine.compile_check
    monkeypatch.setattr(
        engine, "compile_check", lambda source: checks.append(1) or real_check(source)
    )
    backend = EmbeddedBackend()
    policy = PolicySource.from_text(slug="cache", source=SOURCE)
    verdicts = in_threads(
        4, lambda: evaluate(policy, "allow", {"amount": 5}, backend=backend).allow
    )
    assert verdicts == [True] * 4
    assert len(checks) == 1


def test_engines_are_keyed_by_the_source_text_not_the_claimed_version():
    backend = EmbeddedBackend()
    lenient = PolicySource(slug="cache", package="cache.test", source=SOURCE, version="v")
    strict = PolicySource(slug="cache", package="cache.test", source=STRICT, version="v")
    assert evaluate(lenient, "allow", {"amount": 50}, backend=backend).allow is True
    assert evaluate(strict, "allow", {"amount": 50}, backend=backend).allow is False


@pytest.mark.django_db(transaction=True)
def test_the_published_version_is_read_once_until_a_policy_changes(workspace, admin_user):
    policy = policies.policy_create(
        workspace=workspace, actor=admin_user, slug="cached", name="Cached", source=SOURCE
    )
    policies.policy_publish(policy=policy, actor=admin_user, run_tests=False)

    def published_and_queries() -> tuple[str, int]:
        with CaptureQueriesContext(connection) as queries:
            found = selectors.policy_published_source(workspace_id=workspace.id, slug="cached")
        return found["source"], len(queries.captured_queries)

    assert published_and_queries() == (SOURCE, 1)
    assert published_and_queries() == (SOURCE, 0)
    policy.refresh_from_db()
    policies.policy_publish(policy=policy, actor=admin_user, source=STRICT, run_tests=False)
    assert published_and_queries() == (STRICT, 1)  # publishing dropped the cached version


@pytest.mark.django_db(transaction=True)
def test_a_change_announced_by_another_process_is_seen_at_once(workspace, admin_user):
    policy = policies.policy_create(
        workspace=workspace, actor=admin_user, slug="elsewhere", name="Elsewhere", source=SOURCE
    )
    policies.policy_publish(policy=policy, actor=admin_user, run_tests=False)
    decide = lambda: policies.policy_evaluate(  # noqa: E731
        workspace_id=workspace.id, slug="elsewhere", rule="allow", input={"amount": 50}, source="t"
    )
    assert decide().allow is True
    # Another process publishes: its row lands and it moves the generation in Redis (no
    # signal in this process).
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO policies_policyversion (id, created_at, policy_id, number, source,"
            " package, sha256, rules, note, published_at) VALUES (gen_random_uuid(), now(), %s,"
            " 2, %s,"
            " 'cache.test', %s, '[]', '', now())",
            [policy.id, STRICT, engine.source_digest(STRICT)],
        )
    redis_client().incr(selectors.PUBLISHED_GENERATION_KEY)
    assert decide().allow is False
