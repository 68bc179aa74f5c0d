"""OpenTelemetry: one trace per run, from the request that starts it to the model service.

``TRACING_EXPORTER`` picks the exporter in every process (web, worker, beat, streams, the
model service): ``none`` (the default: no provider is installed, the API's no-op tracer
costs next to nothing and no run stores a trace context), ``console`` (spans printed) or
``otlp`` (OTLP/HTTP to ``OTEL_EXPORTER_OTLP_ENDPOINT``). With tracing on, the libraries'
instrumentations trace Django requests, Celery messages (publish and run) and httpx calls
and propagate W3C ``traceparent`` and ``baggage`` between processes.

A run outlives any one message (it waits for people, retries after backoff, is re-driven
by the reconciler), so the context of the moment it was created is stored on the run
(``Run.trace_context``) and made current again wherever work for it is enqueued: every
task of a run continues the same trace. The run's correlation id travels as baggage, and
``CorrelationIdSpanProcessor`` copies it onto every span a process records.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)

logger = logging.getLogger(__name__)
tracer = trace.get_tracer("flowgate.engine")
CORRELATION_ID = "flowgate.correlation_id"  # the span attribute and the baggage key
# Probes and scrapes would fill a trace store with noise.
UNTRACED_URLS = "healthz,readyz,livez,metrics,static/"
# Beat's housekeeping ticks (the reconciler every few seconds) would each start a trace of
# their own; a run they re-drive is traced in the run's own trace all the same. A drain
# serves many runs: each run it advances is traced in its own trace, the drain in none.
HOUSEKEEPING_TASKS = frozenset(
    {"runs.reconcile", "runs.purge_expired", "runs.drain", "audit.seal", "dashboard.materialise"}
)
_configured = False


def tracing_enabled() -> bool:
    return _configured


def span_exporter(exporter: str) -> Any:
    """The span exporter ``TRACING_EXPORTER`` names, or None (``none``, unknown, missing
    package: tracing stays off, with a warning for the last two)."""
    if exporter in ("", "none"):
        return None
    if exporter == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if exporter == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            logger.warning(
                "TRACING_EXPORTER=otlp needs opentelemetry-exporter-otlp-proto-http; tracing off"
            )
            return None
        return OTLPSpanExporter()  # endpoint from OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT
    logger.warning("unknown TRACING_EXPORTER %r; tracing off", exporter)
    return None


def configure_tracing(exporter: str) -> None:
    """Install a tracer provider for ``exporter`` and instrument Django, Celery and httpx,
    once per process ("none" installs nothing)."""
    global _configured
    if _configured:
        return
    chosen = span_exporter(exporter)
    if chosen is None:
        return
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # OTEL_SERVICE_NAME (studio/processes.py sets one per process) names the process.
    name = os.environ.get("OTEL_SERVICE_NAME", "flowgate")
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}), sampler=sampler())
    provider.add_span_processor(CorrelationIdSpanProcessor())
    provider.add_span_processor(BatchSpanProcessor(chosen))
    trace.set_tracer_provider(provider)
    _instrument_libraries()
    _configured = True


def _instrument_libraries() -> None:
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    excluded = os.environ.get("OTEL_PYTHON_DJANGO_EXCLUDED_URLS", UNTRACED_URLS)
    DjangoInstrumentor().instrument(excluded_urls=excluded)
    CeleryInstrumentor().instrument()
    HTTPXClientInstrumentor().instrument()


class SkipHousekeeping(Sampler):
    """Samples every new trace except one that begins by publishing or running a
    housekeeping task (the Celery instrumentation names those spans
    ``apply_async/<task>`` and ``run/<task>``)."""

    def should_sample(
        self,
        parent_context: Any,
        trace_id: int,
        name: str,
        kind: Any = None,
        attributes: Any = None,
        links: Any = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        task = name.partition("/")[2]
        if task in HOUSEKEEPING_TASKS:
            return SamplingResult(Decision.DROP)
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)

    def get_description(self) -> str:
        return "SkipHousekeeping"


def sampler() -> Sampler:
    """A child follows its parent (a dropped housekeeping tick drops the task it runs); a
    new trace is kept unless it is housekeeping."""
    return ParentBased(root=SkipHousekeeping())


class CorrelationIdSpanProcessor(SpanProcessor):
    """Copies the run's correlation id from the baggage onto every span as it starts."""

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        correlation_id = baggage.get_baggage(CORRELATION_ID, parent_context)
        if correlation_id:
            span.set_attribute(CORRELATION_ID, str(correlation_id))


def run_trace_context(*, run: Any) -> dict[str, str]:
    """Where a run is created: start its trace and return the W3C carrier (``traceparent``,
    ``baggage`` with the correlation id) to store on the run; ``{}`` with tracing off.

    The trace is the current one (the web request, the scheduler's task) or a new one
    (a command-line start). A short ``run created`` span marks the start; every later task
    of the run hangs off it. The current span is tagged with the correlation id too: it
    began before anyone knew it."""
    if not _configured:
        return {}
    trace.get_current_span().set_attribute(CORRELATION_ID, run.correlation_id)
    context = baggage.set_baggage(CORRELATION_ID, run.correlation_id)
    span = tracer.start_span("run created", context=context, attributes=_run_attributes(run))
    span.end()
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span, context))
    return carrier


@contextmanager
def continued_trace(carrier: Mapping[str, str] | None) -> Iterator[None]:
    """Make a run's stored trace context current: a Celery message published inside
    carries it, so the task continues the run's trace. Nothing to do when it is empty."""
    if not carrier:
        yield
        return
    token = otel_context.attach(propagate.extract(carrier))
    try:
        yield
    finally:
        otel_context.detach(token)


@contextmanager
def outside_any_trace() -> Iterator[None]:
    """Work done here starts no span in the current trace (a drain requested in a request
    belongs to every run it will advance, not to that request's)."""
    token = otel_context.attach(otel_context.Context())
    try:
        yield
    finally:
        otel_context.detach(token)


def current_correlation_id() -> str | None:
    """The correlation id of the run whose work is running now (from the baggage)."""
    value = baggage.get_baggage(CORRELATION_ID)
    return str(value) if value else None


def _run_attributes(run: Any) -> dict[str, Any]:
    return {
        "flowgate.run_id": str(run.id),
        "flowgate.flow_id": str(run.flow_id),
        "flowgate.trigger": str(run.trigger),
        CORRELATION_ID: run.correlation_id,
    }


def start_run_span(name: str, run: Any) -> Any:
    """A span for work on ``run`` taken from the queue (a drain advancing it), tagged with
    the run: a consumer's span, as a Celery task's is. The work may span several
    transactions (a run whose calls are in flight): the span starts in the run's trace, is
    made current with ``trace.use_span`` for each piece of the work, and the caller ends
    it."""
    if not _configured:  # tracing off: no span to make (each cost ~15 µs a run, for nothing)
        return trace.INVALID_SPAN
    with continued_trace(run.trace_context):
        return tracer.start_span(
            name, kind=trace.SpanKind.CONSUMER, attributes=_run_attributes(run)
        )


_NOTHING = nullcontext()


def run_span_current(span: Any) -> AbstractContextManager[Any]:
    """``start_run_span``'s span made current for a piece of the work (not ended after)."""
    if span is trace.INVALID_SPAN:
        return _NOTHING
    return trace.use_span(span, end_on_exit=False)


@contextmanager
def step_span(*, run: Any, node_id: str, block_type: str, attempt: int) -> Iterator[Any]:
    """A span around one step attempt, tagged with the run, node and correlation id. The
    correlation id is in the baggage meanwhile, so outgoing calls carry it (a header, and
    the ``baggage`` of the trace context) whichever process runs the step."""
    token = otel_context.attach(baggage.set_baggage(CORRELATION_ID, run.correlation_id))
    try:
        if not _configured:  # tracing off: the baggage only (outgoing calls carry it)
            yield trace.INVALID_SPAN
            return
        with tracer.start_as_current_span(
            f"step {node_id}",
            attributes={
                **_run_attributes(run),
                "flowgate.node": node_id,
                "flowgate.block": block_type,
                "flowgate.attempt": attempt,
            },
        ) as span:
            yield span
    finally:
        otel_context.detach(token)
