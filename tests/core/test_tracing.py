"""Tracing: spans around run steps, a trace per run that every later task continues, and
the correlation id on every span and outgoing call.

The ``traced`` fixture turns tracing on in this process for one test: spans are recorded in
memory, and Celery publishes are traced by the real instrumentation and really sent to
Redis (to a queue nobody reads). tests/mlmodels/test_tracing.py checks the same across
real web, worker and model-service processes.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.utils import timezone
from opentelemetry import trace
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from apps.core import tracing
from apps.core.http import internal_client, safe_client
from apps.runs import reconciler
from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.models import Run, StepRun
from apps.runs.services import run_start, step_resume
from apps.runs.tasks import drain
from studio.celery import app as celery_app
from studio.processes import model_service_process, studio_processes
from tests.inbox.helpers import start_waiting_run
from tests.runs.helpers import definition, node, published_flow
from tests.support.http_server import CountingServer

pytestmark = pytest.mark.django_db(transaction=True)
CORRELATION = tracing.CORRELATION_ID


@pytest.fixture
def traced(monkeypatch):
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=tracing.sampler())
    provider.add_span_processor(tracing.CorrelationIdSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "tracer", provider.get_tracer("flowgate.engine"))
    monkeypatch.setattr(tracing, "_configured", True)
    queue = f"test-tracing-{uuid.uuid4().hex[:8]}"
    monkeypatch.setitem(celery_app.conf, "task_default_queue", queue)
    CeleryInstrumentor().instrument(tracer_provider=provider)
    yield exporter
    CeleryInstrumentor().uninstrument()
    provider.shutdown()
    redis.Redis.from_url(settings.REDIS_URL).delete(queue)


def spans_named(exporter: InMemorySpanExporter, name: str) -> list:
    return [span for span in exporter.get_finished_spans() if span.name == name]


def run_trace(run: Run) -> tuple[int, int]:
    """The trace id and the ``run created`` span id stored on ``run``."""
    _, trace_id, span_id, _ = run.trace_context["traceparent"].split("-")
    return int(trace_id, 16), int(span_id, 16)


def start_one_step_run(workspace, user, **options) -> Run:  # type: ignore[no-untyped-def]
    flow = published_flow(
        workspace,
        user,
        definition(
            [node("start", "trigger.manual"), node("ok", "transform.set", values={"x": "1"})],
            [("start", "ok")],
        ),
    )
    return run_start(flow=flow, trigger="manual", payload=envelope({}), **options).run


def test_each_step_gets_a_span_with_the_correlation_id(workspace, builder_user, traced):
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
    finished = {span.name: span for span in traced.get_finished_spans()}
    assert {"step ok", "step bad"} <= set(finished)
    ok = finished["step ok"]
    assert ok.attributes["flowgate.run_id"] == str(run.id)
    assert ok.attributes[CORRELATION] == "corr-42"
    assert ok.attributes["flowgate.block"] == "transform.set"
    assert finished["step bad"].status.status_code == trace.StatusCode.ERROR


def test_a_run_started_in_a_request_continues_its_trace_into_the_message(
    workspace, builder_user, traced
):
    with tracing.tracer.start_as_current_span("POST /runs/") as request:
        run = start_one_step_run(workspace, builder_user, correlation_id="corr-7")
    run.refresh_from_db()
    trace_id, created_id = run_trace(run)
    assert trace_id == request.get_span_context().trace_id
    assert "flowgate.correlation_id=corr-7" in run.trace_context["baggage"]

    [created] = spans_named(traced, "run created")
    assert created.context.span_id == created_id
    assert created.parent.span_id == request.get_span_context().span_id
    assert created.attributes["flowgate.run_id"] == str(run.id)
    # The drain request belongs to no trace; the drain (here in this process) advances the
    # run in the run's own trace.
    assert not spans_named(traced, "apply_async/runs.drain")
    drain()
    [advanced] = spans_named(traced, "advance run")
    assert advanced.parent.span_id == created_id
    assert advanced.context.trace_id == trace_id
    assert advanced.attributes[CORRELATION] == "corr-7"
    [step] = spans_named(traced, "step ok")
    assert step.parent.span_id == advanced.context.span_id
    # The request began before the run: it is tagged when the run is created.
    [request_span] = spans_named(traced, "POST /runs/")
    assert request_span.attributes[CORRELATION] == "corr-7"


def test_a_run_started_outside_any_trace_gets_a_trace_of_its_own(workspace, builder_user, traced):
    run = start_one_step_run(workspace, builder_user)
    [created] = spans_named(traced, "run created")
    assert created.parent is None
    assert run_trace(run) == (created.context.trace_id, created.context.span_id)


def test_with_tracing_off_a_run_stores_no_trace_context(workspace, builder_user):
    run = start_one_step_run(workspace, builder_user, enqueue=False)
    run.refresh_from_db()
    assert run.trace_context == {}


def test_the_reconciler_re_drives_a_run_in_the_run_trace(workspace, builder_user, traced):
    run = start_one_step_run(workspace, builder_user, enqueue=False)  # the message was lost
    Run.objects.filter(pk=run.pk).update(updated_at=timezone.now() - timedelta(seconds=30))
    with tracing.tracer.start_as_current_span("beat tick"):
        assert reconciler.reconcile()["redriven"] == 1
    drain()  # the reconciler queued it again for the drains
    trace_id, created_id = run_trace(run)
    [advanced] = spans_named(traced, "advance run")
    assert (advanced.context.trace_id, advanced.parent.span_id) == (trace_id, created_id)
    assert advanced.attributes[CORRELATION] == run.correlation_id


def test_a_wait_ended_by_a_decision_or_a_deadline_continues_the_run_trace(
    workspace, builder_user, traced
):
    decided = start_waiting_run(workspace, builder_user)
    expired = start_waiting_run(workspace, builder_user, due_in_hours=1)
    traced.clear()
    with tracing.tracer.start_as_current_span("POST /decide/"):
        assert step_resume(run_id=decided.id, node_id="review", signal={"decision": "approve"})
    StepRun.objects.filter(run=expired, node_id="review").update(
        wait_deadline=timezone.now() - timedelta(seconds=1)
    )
    assert reconciler.reconcile()["expired_waits"] == 1

    drain()
    advanced = spans_named(traced, "advance run")
    assert sorted((s.context.trace_id, s.parent.span_id) for s in advanced) == sorted(
        [run_trace(decided), run_trace(expired)]
    )


def test_calls_made_during_a_step_name_the_run(workspace, builder_user):
    run = start_one_step_run(workspace, builder_user, enqueue=False, correlation_id="corr-9")
    with CountingServer() as server:
        with tracing.step_span(run=run, node_id="call", block_type="x", attempt=1):
            internal_client().get(f"{server.url}/internal")
            safe_client(allow=["127.0.0.1"]).get(f"{server.url}/user-url")
            safe_client(allow=["127.0.0.1"]).get(
                f"{server.url}/own", headers={"X-Correlation-ID": "given"}
            )
        internal_client().get(f"{server.url}/outside")
    headers = {
        request["path"]: {name.lower(): value for name, value in request["headers"].items()}
        for request in server.requests
    }
    assert headers["/internal"]["x-correlation-id"] == "corr-9"
    assert headers["/user-url"]["x-correlation-id"] == "corr-9"
    assert headers["/own"]["x-correlation-id"] == "given"
    assert "x-correlation-id" not in headers["/outside"]


def test_every_studio_process_gets_the_tracing_settings_under_a_name_of_its_own():
    shared = {"TRACING_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    specs = [
        *studio_processes(host="127.0.0.1", port=8000, worker_concurrency=2),
        model_service_process(
            service_url="http://127.0.0.1:3001", tracking_uri="http://127.0.0.1:5001"
        ),
    ]
    environments = {spec.name: spec.child_environment(shared) for spec in specs}
    assert {name: env["OTEL_SERVICE_NAME"] for name, env in environments.items()} == {
        "web": "flowgate-web",
        "worker": "flowgate-worker",
        "control": "flowgate-control",
        "beat": "flowgate-beat",
        "streams": "flowgate-streams",
        "models": "flowgate-models",
    }
    for environment in environments.values():
        assert environment["TRACING_EXPORTER"] == "otlp"
        assert environment["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://collector:4318"


def test_beat_housekeeping_makes_no_trace_of_its_own_but_a_run_it_re_drives_stays_traced(
    workspace, builder_user, traced
):
    run = start_one_step_run(workspace, builder_user, enqueue=False)  # the message was lost
    Run.objects.filter(pk=run.pk).update(updated_at=timezone.now() - timedelta(seconds=30))
    with tracing.tracer.start_as_current_span("apply_async/runs.reconcile") as tick:
        assert not tick.is_recording()
        assert reconciler.reconcile()["redriven"] == 1
    with tracing.tracer.start_as_current_span("apply_async/core.ping") as other:
        assert other.is_recording()
    assert not spans_named(traced, "apply_async/runs.reconcile")
    assert not spans_named(traced, "apply_async/runs.drain")
    drain()
    [advanced] = spans_named(traced, "advance run")
    trace_id, created_id = run_trace(run)
    assert (advanced.context.trace_id, advanced.parent.span_id) == (trace_id, created_id)
