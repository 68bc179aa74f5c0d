"""Spans around run steps carry the run, the node and the correlation id."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from apps.core import tracing
from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.services import run_start
from tests.runs.helpers import definition, node, published_flow

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def spans(monkeypatch):
    """Record the engine's spans with a provider of this test's own (the global provider
    stays untouched for the rest of the session)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "tracer", provider.get_tracer("flowgate.engine"))
    yield exporter
    provider.shutdown()


def test_each_step_gets_a_span_with_the_correlation_id(workspace, builder_user, spans):
    flow = published_flow(
        workspace,
        builder_user,
        definition(
            [
                node("start", "trigger.manual"),
                node("ok", "transform.set", values={"x": "1"}),
                node("bad", "transform.set", values={"y": "nope.deep"}),
            ],
            [("start", "ok"), ("ok", "bad")],
        ),
    )
    run = run_start(
        flow=flow, trigger="manual", payload=envelope({}), enqueue=False, correlation_id="corr-42"
    ).run
    advance(run.id)
    finished = {span.name: span for span in spans.get_finished_spans()}
    assert {"step ok", "step bad"} <= set(finished)
    ok = finished["step ok"]
    assert ok.attributes["flowgate.run_id"] == str(run.id)
    assert ok.attributes["flowgate.correlation_id"] == "corr-42"
    assert ok.attributes["flowgate.block"] == "transform.set"
    assert finished["step bad"].status.status_code == trace.StatusCode.ERROR
