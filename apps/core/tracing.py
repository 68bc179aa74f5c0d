"""OpenTelemetry set-up: spans around run steps, carrying the run's correlation id.

Off by default (``TRACING_EXPORTER=none``): the API's no-op tracer then costs next to
nothing per step. ``console`` prints spans; ``otlp`` sends them to
``OTEL_EXPORTER_OTLP_ENDPOINT`` (needs ``opentelemetry-exporter-otlp``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace

logger = logging.getLogger(__name__)
tracer = trace.get_tracer("flowgate.engine")
_configured = False


def configure_tracing(exporter: str) -> None:
    """Install a tracer provider for ``exporter`` once per process ("none" installs
    nothing)."""
    global _configured
    if _configured or exporter in ("", "none"):
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    if exporter == "console":
        span_exporter: Any = ConsoleSpanExporter()
    elif exporter == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            logger.warning("TRACING_EXPORTER=otlp needs opentelemetry-exporter-otlp; tracing off")
            return
        span_exporter = OTLPSpanExporter()
    else:
        logger.warning("unknown TRACING_EXPORTER %r; tracing off", exporter)
        return
    provider = TracerProvider(resource=Resource.create({"service.name": "flowgate"}))
    provider.add_span_processor(BatchSpanProcessor(span_exporter))
    trace.set_tracer_provider(provider)
    _configured = True


@contextmanager
def step_span(*, run: Any, node_id: str, block_type: str, attempt: int) -> Iterator[Any]:
    """A span around one step attempt, tagged with the run, node and correlation id."""
    with tracer.start_as_current_span(
        f"step {node_id}",
        attributes={
            "flowgate.run_id": str(run.id),
            "flowgate.flow_id": str(run.flow_id),
            "flowgate.node": node_id,
            "flowgate.block": block_type,
            "flowgate.attempt": attempt,
            "flowgate.correlation_id": run.correlation_id,
        },
    ) as span:
        yield span
