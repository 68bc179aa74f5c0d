"""Tracing in the model service, configured like every Flowgate process.

BentoML has OpenTelemetry built in: its ASGI middleware extracts the caller's W3C trace
context (``traceparent``, ``baggage``), so a request's spans are children of the step's
HTTP call. Its own exporter settings (``tracing.exporter_type``) have no console exporter,
so the service samples every trace here and gets its exporter from the same
``TRACING_EXPORTER`` / ``OTEL_EXPORTER_OTLP_ENDPOINT`` as the studio
(``apps.core.tracing.span_exporter``), and tags every span with the caller's correlation id.
"""

from __future__ import annotations

import os
from typing import Any

from apps.core.tracing import CorrelationIdSpanProcessor, span_exporter

EVERY_PATH = ["/"]  # regular expressions searched in the request's URL


def exporter_name() -> str:
    return os.environ.get("TRACING_EXPORTER", "none")


def service_options() -> dict[str, Any]:
    """Extra ``@bentoml.service`` options: sample every trace when tracing is on (BentoML
    samples none by default; a sampled caller's trace is followed either way). With
    tracing off, every path is excluded from BentoML's OpenTelemetry middleware: its spans
    had nowhere to go, and making them (one per request, one per body sent) was a sixth
    of a one-row request's CPU."""
    if exporter_name() in ("", "none"):
        return {"tracing": {"excluded_urls": EVERY_PATH}}
    return {"tracing": {"sample_rate": 1.0}}


def install_exporter() -> None:
    """Add the correlation-id tagger and the exporter to BentoML's tracer provider. Call it
    in the worker process (the service's ``__init__``), after BentoML read its config."""
    exporter = span_exporter(exporter_name())
    if exporter is None:
        return
    from bentoml._internal.configuration.containers import BentoMLContainer
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # The provider BentoML's tracing middleware uses (it installs no global one).
    provider = BentoMLContainer.tracer_provider.get()
    provider.add_span_processor(CorrelationIdSpanProcessor())
    provider.add_span_processor(BatchSpanProcessor(exporter))
