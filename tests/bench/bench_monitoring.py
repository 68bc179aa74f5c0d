"""Model monitoring's cost per ``model.predict`` step: what the block adds after the model
answered (``PredictionRecorder.record``: the cached sampling rate, PII masking, the row)
plus that row's share of the step batch's INSERT.

As the engine does it: the step runs on an I/O thread, where a deferred row batch holds
the row; the caller hands it to the batch recording the step's outcome, which writes the
rows of ``--batch`` steps (the drain's batch size) in one INSERT before its commit. Each
measurement is one such round, divided by its steps.

Run: ``python tests/bench/bench_monitoring.py [--calls N] [--batch B]``. Uses its own
Postgres database (``BENCH_DATABASE_URL``, created and migrated when missing), measures N
sampled steps inside one transaction, N steps at sampling rate 0 (the join keys and the
prediction only, for labels), and as a floor N ``SELECT 1`` round trips on the same
connection. Prints the figures and writes tests/bench/results/monitoring.json. Figures,
not asserts: the budget is 1 ms per step.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/flowgate_bench_monitoring"
)
os.environ["DATABASE_URL"] = DATABASE_URL
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/13")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings.test")


from tests.bench.common import create_database, percentile, timed  # noqa: E402

create_database(DATABASE_URL)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from apps.accounts.models import Workspace  # noqa: E402
from apps.audit.models import DataSettings  # noqa: E402
from apps.core import batch_rows  # noqa: E402
from apps.monitoring.models import ModelMonitor, PredictionSample  # noqa: E402
from apps.monitoring.sampling import PredictionRecorder, forget_sample_rate  # noqa: E402

FEATURES = {
    "amount": 9000.0,
    "claimant_age": 30.0,
    "days_since_policy_start": 10.0,
    "prior_claims": 2.0,
    "channel": "web",
}


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "mean_ms": round(sum(samples) / len(samples), 4),
        "p50_ms": round(percentile(samples, 0.5), 4),
        "p99_ms": round(percentile(samples, 0.99), 4),
    }


def record(recorder: PredictionRecorder) -> None:
    recorder.record(
        run_id=str(uuid.uuid4()),
        node_id="score",
        model="claim-fraud",
        version="2",
        alias="production",
        inputs=FEATURES,
        label="fraud",
        score=0.91,
        latency_ms=4.2,
        business_key="C-1",
    )


def rounds(recorder: PredictionRecorder, calls: int, size: int) -> list[float]:
    """Milliseconds per step of rounds of ``size`` steps: each step's record on its
    (deferred) row batch, handed to the round's batch, flushed in one INSERT."""
    per_step = []
    for _ in range(max(1, calls // size)):
        started = time.perf_counter()
        outcome = batch_rows.RowBatch().open()
        for _ in range(size):
            held = batch_rows.RowBatch(deferred=True).open()
            record(recorder)
            rows = held.rows
            held.close()
            outcome.hold(rows)
        outcome.flush()
        outcome.close()
        elapsed = (time.perf_counter() - started) * 1000
        per_step.extend([elapsed / size] * size)
    return per_step


def floor() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=25)
    arguments = parser.parse_args()
    calls, size = arguments.calls, arguments.batch
    call_command("migrate", verbosity=0)
    workspace, _ = Workspace.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    DataSettings.objects.update_or_create(
        workspace=workspace, defaults={"sensitive_fields": ["claimant_age"]}
    )
    recorder = PredictionRecorder(str(workspace.id))
    figures = {}
    with transaction.atomic():
        record(recorder)  # warm the rate and classification caches
        figures["floor_select_1"] = summary(timed(floor, calls))
        figures["sampled_step"] = summary(rounds(recorder, calls, size))
        ModelMonitor.objects.update_or_create(
            workspace=workspace, model_name="claim-fraud", defaults={"sample_rate": 0.0}
        )
        forget_sample_rate(workspace.id, "claim-fraud")
        figures["unsampled_step"] = summary(rounds(recorder, calls, size))
        transaction.set_rollback(True)  # leave the bench database as it was
    figures["calls"], figures["batch"] = calls, size
    figures["budget_ms"] = 1.0
    figures["sampled_over_floor"] = round(
        figures["sampled_step"]["mean_ms"] / figures["floor_select_1"]["mean_ms"], 2
    )
    assert not PredictionSample.objects.filter(workspace=workspace).exists()
    print(json.dumps(figures, indent=2))
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / "monitoring.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
