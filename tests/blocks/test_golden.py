"""Golden input → output cases for the built-in blocks, one file per block version under
``tests/blocks/golden/<key>@<version>.json``.

Each case gives a ``config``, the run's data (``scope``: ``trigger``, ``steps``…) and the
step ``input``, and expects one of: ``output`` (with ``port``, default ``out``), ``error`` (a
piece of the message), or ``wait`` (``kind``, and ``seconds`` until the deadline). A case
with ``resume`` (``state``, ``signal``) resumes a wait instead of executing. Blocks that
start sub-flows get a recording ``subflows`` service: ``started`` lists what they asked
for, ``outcomes`` are the children's results handed back on resume.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from apps.blocks.base import BlockError, Wait
from apps.blocks.expressions import ExpressionError
from apps.blocks.registry import registry
from tests.blocks.fakes import FakeContext

GOLDEN = Path(__file__).with_name("golden")
FILES = sorted(GOLDEN.glob("*.json"))


class RecordingSubflows:
    def __init__(self, outcomes: list[Any]) -> None:
        self.started: list[dict[str, Any]] = []
        self._outcomes = outcomes

    def start(self, **request: Any) -> str:
        self.started.append({key: request[key] for key in ("flow_slug", "version", "body")})
        return f"child-{len(self.started) - 1}"

    def outcomes(self, run_ids: list[str]) -> list[Any]:
        return self._outcomes


class NoConnections:
    """The connections service of a workspace without connections or an egress allow-list."""

    def get(self, name: str, **_: Any) -> Any:
        raise BlockError(f"connection {name!r} does not exist", retryable=False)

    def egress_allowlist(self) -> list[str]:
        return []


def cases() -> list[Any]:
    found = []
    for path in FILES:
        document = json.loads(path.read_text())
        for case in document["cases"]:
            found.append(pytest.param(document, case, id=f"{path.stem}: {case['name']}"))
    return found


@pytest.mark.parametrize(("document", "case"), cases())
def test_golden_case(document: dict[str, Any], case: dict[str, Any]) -> None:
    block_class = registry.get(document["block"], document["version"])
    assert block_class is not None, f"{document['block']} v{document['version']} is not registered"
    subflows = RecordingSubflows(case.get("outcomes", []))
    context = FakeContext(
        scope=case.get("scope", {}),
        services={"subflows": subflows, "connections": NoConnections()},
        dry_run=case.get("dry_run", False),
    )
    config = block_class.Config.model_validate(case.get("config", {}))
    block = block_class()
    expect = case["expect"]
    try:
        if "resume" in case:
            wait = Wait(kind=case["resume"].get("kind", ""), state=case["resume"].get("state", {}))
            result = block.resume(context, config, wait, case["resume"].get("signal", {}))
        else:
            result = block.execute(context, config, case.get("input"))
    except (BlockError, ExpressionError) as error:  # the engine fails the step with either
        assert "error" in expect, f"unexpected error: {error}"
        assert expect["error"] in str(error)
        return
    assert "error" not in expect, f"expected an error, got {result}"
    if "wait" in expect:
        assert result.wait is not None, f"expected a wait, got {result}"
        assert result.wait.kind == expect["wait"]["kind"]
        if "seconds" in expect["wait"]:
            due = timezone.now() + timedelta(seconds=expect["wait"]["seconds"])
            assert abs((result.wait.deadline - due).total_seconds()) < 60
    else:
        assert result.wait is None, f"expected an output, got a wait: {result.wait}"
        assert (result.output, result.port) == (expect["output"], expect.get("port", "out"))
    if "meta" in expect:
        assert {key: result.meta.get(key) for key in expect["meta"]} == expect["meta"]
    assert subflows.started == case.get("started", [])


# Blocks whose output is a remote service's answer: their cases run against the real
# service (a loopback SMTP/HTTP listener, Postgres, OPA, the model service) in these suites.
COVERED_BY_SERVICE_TESTS = {
    "connector.email.send": "tests/connectors/test_email.py",
    "connector.webhook.out": "tests/connectors/test_webhook_out.py",
    "connector.sql.query": "tests/connectors/test_sql.py",
    "human.approval": "tests/inbox/blocks",
    "model.predict": "tests/mlmodels/test_block.py",
    "ai.generate": "tests/mlmodels/test_ai_blocks.py",
    "ai.classify": "tests/mlmodels/test_ai_blocks.py",
    "ai.extract": "tests/mlmodels/test_ai_blocks.py",
    "ai.agent": "tests/mlmodels/test_ai_agent.py",
    "policy.evaluate": "tests/policies/test_block.py",
}


@pytest.mark.parametrize("block", registry.all_versions(), ids=lambda b: f"{b.key}@{b.version}")
def test_every_block_version_has_golden_cases(block: Any) -> None:
    if block.key in COVERED_BY_SERVICE_TESTS:
        assert Path(COVERED_BY_SERVICE_TESTS[block.key]).exists()
        return
    path = GOLDEN / f"{block.key}@{block.version}.json"
    assert path.exists(), f"add golden cases for {block.key} v{block.version} at {path}"
    assert json.loads(path.read_text())["cases"], f"{path.name} has no cases"
