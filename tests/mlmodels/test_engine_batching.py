"""A drain's model calls go out together: the runs of a batch are scored in shared batches
of the model service (BentoML adaptive batching), each run with its own answer."""

from __future__ import annotations

import pytest

from apps.mlmodels.training import CLAIM_FRAUD
from apps.runs.blocks import envelope
from apps.runs.engine import drain_queued
from apps.runs.models import Run, StepRun
from apps.runs.services import run_start
from tests.mlmodels.helpers import CLAIM, INPUTS
from tests.runs.helpers import definition, node, published_flow

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_the_model_calls_of_a_drain_share_batches_of_the_model_service(
    workspace, admin_user, model_stack, trained_models, settings
):
    settings.FLOWGATE = {**settings.FLOWGATE, "MODEL_SERVICE_URL": model_stack.service.url}
    flow = published_flow(
        workspace,
        admin_user,
        definition(
            [
                node("start", "trigger.manual"),
                node("score", "model.predict", model=CLAIM_FRAUD, version="2", inputs=INPUTS),
            ],
            [("start", "score")],
        ),
    )
    amounts = [100 + 400 * number for number in range(48)]
    runs = [
        run_start(
            flow=flow,
            trigger="manual",
            payload=envelope({**CLAIM, "amount": amount}),
            enqueue=False,
        ).run
        for amount in amounts
    ]
    advanced = drain_queued(wake_another=lambda: None, batch_size=25, seconds=30)

    assert advanced == 48
    assert set(
        Run.objects.filter(pk__in=[r.pk for r in runs]).values_list("status", flat=True)
    ) == {"succeeded"}
    steps = StepRun.objects.filter(run__in=runs, node_id="score")
    assert max(step.meta["batch_size"] for step in steps) > 1
    by_run = {step.run_id: step.output for step in steps}
    cheapest, dearest = by_run[runs[0].pk], by_run[runs[-1].pk]
    assert cheapest["scores"] != dearest["scores"]  # each run got its own row's answer
