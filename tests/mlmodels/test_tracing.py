"""One trace per run, across real processes: the studio's web server, a Celery worker and
the BentoML model service all export to one OTLP receiver.

A run is started through the REST API; it scores a claim with the model service, waits for
a reviewer, and after the decision (another request, hence another trace) scores again.
Everything the run did, before and after the wait, is in the trace of the request that
started it, with the parent links the W3C context gives, and every span carries the run's
correlation id.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest

from apps.accounts.services import api_token_create
from apps.inbox.models import ReviewTask
from apps.mlmodels.training import CLAIM_FRAUD
from apps.runs.models import Run
from studio.processes import model_service_process, studio_processes
from tests.mlmodels.helpers import CLAIM, INPUTS
from tests.runs.helpers import definition, node, published_flow
from tests.support.model_stack import ModelStack, _start
from tests.support.otlp import OtlpReceiver, ReceivedSpan
from tests.support.processes import free_ports, stop_process_group
from tests.support.workers import WorkerProcess

pytestmark = [pytest.mark.slow]

CORRELATION = "flowgate.correlation_id"
SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5  # OTLP span kinds


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiving:
        yield receiving


@pytest.fixture
def traced_studio(
    transactional_db, test_database_url, model_stack: ModelStack, trained_models, receiver
) -> Iterator[str]:
    """The studio's own web and model-service process specs and a worker, all exporting to
    ``receiver``; the web server's URL."""
    queue = {"CELERY_QUEUE": f"test-tracing-{uuid.uuid4().hex[:8]}"}
    service_port, web_port = free_ports(2)
    service_url = f"http://127.0.0.1:{service_port}"
    models_spec = model_service_process(
        service_url=service_url, tracking_uri=model_stack.mlflow.url
    )
    models = _start(_exporting(models_spec, receiver), service_url)
    web = worker = None
    try:
        web_spec = next(
            spec
            for spec in studio_processes(host="127.0.0.1", port=web_port, worker_concurrency=1)
            if spec.name == "web"
        )
        web_spec = replace(
            web_spec,
            environment={**web_spec.environment, "DATABASE_URL": test_database_url, **queue},
        )
        web = _start(_exporting(web_spec, receiver), f"http://127.0.0.1:{web_port}")
        worker = WorkerProcess(
            database_url=test_database_url,
            environment={
                **queue,
                "MODEL_SERVICE_URL": service_url,
                **receiver.exporting_environment("flowgate-worker"),
            },
        ).start()
        models.wait("/readyz")
        web.wait("/healthz", seconds=60)
        yield web.url
    finally:
        for started in (web, models):
            if started is not None:
                stop_process_group(started.process)
        if worker is not None:
            worker.stop()


def _exporting(spec, receiver: OtlpReceiver):  # type: ignore[no-untyped-def]
    """``spec`` with the environment that makes it export to ``receiver``, under the
    service name the studio gives it."""
    name = spec.child_environment({})["OTEL_SERVICE_NAME"]
    return replace(spec, environment={**spec.environment, **receiver.exporting_environment(name)})


def scoring_flow(workspace, builder):  # type: ignore[no-untyped-def]
    score = {
        "model": CLAIM_FRAUD,
        "version": "2",
        "inputs": INPUTS,
        "threshold": 0.5,
    }
    return published_flow(
        workspace,
        builder,
        definition(
            [
                node("start", "trigger.manual"),
                node("score", "model.predict", **score),
                node("review", "human.approval", title="Check the claim"),
                node("rescore", "model.predict", **score),
            ],
            [("start", "score"), ("score", "review", "out"), ("review", "rescore", "approved")],
        ),
        name="Traced scoring",
    )


def wait_for_status(run_id: str, status: str, seconds: float = 90) -> Run:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run = Run.objects.get(pk=run_id)
        if run.status == status:
            return run
        assert run.status not in ("failed", "cancelled"), run.error
        time.sleep(0.2)
    pytest.fail(f"run {run_id} still {run.status} after {seconds}s")


def finished(spans: list[ReceivedSpan], trace_id: str, *, tasks: int, predictions: int) -> bool:
    """Whether ``trace_id`` holds that many advances of the run by a worker and model-service
    requests (an advance's span ends, and is exported, after its steps')."""
    in_trace = [span for span in spans if span.trace_id == trace_id]
    worker_tasks = [s for s in in_trace if s.name == "advance run"]
    served = [s for s in in_trace if s.service == "flowgate-models" and s.kind == SERVER]
    return len(worker_tasks) == tasks and len(served) == predictions


def only(spans: list[ReceivedSpan], **wanted: object) -> ReceivedSpan:
    found = [span for span in spans if all(getattr(span, k) == v for k, v in wanted.items())]
    assert len(found) == 1, f"{len(found)} spans match {wanted}: {found}"
    return found[0]


def children(spans: list[ReceivedSpan], parent: ReceivedSpan, **wanted: object) -> list:
    return [
        span
        for span in spans
        if span.parent_span_id == parent.span_id
        and all(getattr(span, k) == v for k, v in wanted.items())
    ]


def test_a_run_is_one_trace_from_the_request_through_the_worker_to_the_model_service(
    workspace, builder_user, reviewer_user, traced_studio, receiver
):
    flow = scoring_flow(workspace, builder_user)
    builder_token = api_token_create(user=builder_user, workspace=workspace, name="t").secret
    reviewer_token = api_token_create(user=reviewer_user, workspace=workspace, name="t").secret
    api = f"{traced_studio}/api/w/{workspace.slug}"

    started = httpx.post(
        f"{api}/flows/{flow.id}/runs/",
        json={"input": CLAIM},
        headers={"Authorization": f"Bearer {builder_token}"},
        timeout=30,
    )
    assert started.status_code == 201, started.text
    run = wait_for_status(started.json()["id"], "waiting")
    correlation_id = run.correlation_id
    assert run.trace_context["traceparent"]
    trace_id = run.trace_context["traceparent"].split("-")[1]

    # The request: the web process's server span, and the run's start beneath it.
    receiver.wait_for(lambda spans: finished(spans, trace_id, tasks=1, predictions=1))
    spans = receiver.in_trace(trace_id)
    request = only(spans, service="flowgate-web", kind=SERVER)
    assert request.parent_span_id == ""
    created = only(spans, name="run created")
    assert created.parent_span_id == request.span_id
    assert created.attributes["flowgate.run_id"] == str(run.id)

    # The worker's drain advanced the run in the run's trace, under the run's start.
    task = only(children(spans, created), service="flowgate-worker", kind=CONSUMER)
    assert task.name == "advance run"

    # The step, its call to the model service, and the model service's own span.
    step = only(children(spans, task), name="step score")
    call = only(children(spans, step), kind=CLIENT)
    assert call.service == "flowgate-worker" and call.attributes.get("http.method") == "POST"
    served = only(children(spans, call), service="flowgate-models", kind=SERVER)
    assert "/predict" in served.name

    # A decision, in a trace of its own, resumes the run: its work continues the run's trace.
    task_id = ReviewTask.objects.get(run_id=run.id).id
    decided = httpx.post(
        f"{api}/tasks/{task_id}/decide/",
        json={"decision": "approve"},
        headers={"Authorization": f"Bearer {reviewer_token}"},
        timeout=30,
    )
    assert decided.status_code == 200, decided.text
    wait_for_status(str(run.id), "succeeded")
    receiver.wait_for(lambda spans: finished(spans, trace_id, tasks=2, predictions=2))
    spans = receiver.in_trace(trace_id)
    rescore = only(spans, name="step rescore")
    resumed = only(spans, span_id=rescore.parent_span_id)
    assert (resumed.service, resumed.kind, resumed.name) == (
        "flowgate-worker",
        CONSUMER,
        "advance run",
    )
    assert resumed.parent_span_id == created.span_id
    rescore_call = only(children(spans, rescore), kind=CLIENT)
    only(children(spans, rescore_call), service="flowgate-models", kind=SERVER)
    decision_requests = [
        s for s in receiver.spans if s.service == "flowgate-web" and "decide" in s.name
    ]
    assert decision_requests and all(s.trace_id != trace_id for s in decision_requests)

    # Every span of the run's trace, in every process, names the run's correlation id.
    assert {span.service for span in spans} == {
        "flowgate-web",
        "flowgate-worker",
        "flowgate-models",
    }
    untagged = [
        (s.service, s.name) for s in spans if s.attributes.get(CORRELATION) != correlation_id
    ]
    assert untagged == []
