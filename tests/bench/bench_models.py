"""Model serving: the model.predict block over the bare service call, and service throughput
with and without adaptive batching.

Run: ``python tests/bench/bench_models.py [--calls N] [--clients C]``. Starts MLflow and the
BentoML model service (the studio's own process specs) on loopback ports with a temporary
registry, trains the demo ``claim-fraud`` model, then measures
- latency (p50/p99) of N sequential one-row calls: bare HTTP ``/predict`` and
  ``/predict_rows`` vs the ``model.predict`` block (CEL input mapping, circuit breaker, HTTP
  client, through the batched ``/predict_rows``);
- throughput of C concurrent clients sending one-row requests: ``/predict`` (one model call
  per request), ``/predict_rows`` (BentoML adaptive batching gathers concurrent rows) and the
  block (which calls ``/predict_rows``), with the mean batch size the service reported.
Prints the figures and writes tests/bench/results/models.json. Figures, not asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings.test")

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402

from apps.mlmodels.blocks import ModelPredictBlock, ModelPredictConfig, ModelServiceClient  # noqa: E402
from apps.mlmodels.training import CLAIM_FRAUD, train_demo_models  # noqa: E402
from studio.processes import mlflow_process, model_service_process  # noqa: E402
from tests.bench.common import percentile, timed  # noqa: E402
from tests.blocks.fakes import FakeContext  # noqa: E402
from tests.mlmodels.helpers import CLAIM  # noqa: E402
from tests.support.model_stack import _start  # noqa: E402
from tests.support.processes import free_ports, stop_process_group  # noqa: E402


def throughput(function, calls: int, clients: int) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda _: function(), range(calls)))
    return calls / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    mlflow_port, service_port = free_ports(2)
    mlflow_url, service_url = f"http://127.0.0.1:{mlflow_port}", f"http://127.0.0.1:{service_port}"
    var_dir = Path(tempfile.mkdtemp(prefix="flowgate-bench-"))
    mlflow = _start(mlflow_process(tracking_uri=mlflow_url, var_dir=var_dir), mlflow_url)
    service = _start(
        model_service_process(service_url=service_url, tracking_uri=mlflow_url), service_url
    )
    try:
        print(
            f"MLflow up in {mlflow.wait('/health'):.1f}s, service ready in {service.wait('/readyz'):.1f}s"
        )
        train_demo_models(tracking_uri=mlflow_url, names=(CLAIM_FRAUD,), rows=400)
        http = httpx.Client(timeout=30)
        body = {"model": CLAIM_FRAUD, "version": "2", "inputs": [CLAIM]}
        row = {"model": CLAIM_FRAUD, "version": "2", "inputs": CLAIM}

        def bare() -> None:
            http.post(f"{service_url}/predict", json=body).raise_for_status()

        def batched() -> None:
            http.post(f"{service_url}/predict_rows", json={"rows": [row]}).raise_for_status()

        context = FakeContext(
            scope={"trigger": {"body": CLAIM}},
            services={"models": ModelServiceClient("bench", base_url=service_url)},
        )
        config = ModelPredictConfig(
            model=CLAIM_FRAUD, version="2", inputs={k: f"trigger.body.{k}" for k in CLAIM}
        )

        batch_sizes: list[int] = []

        def block() -> None:
            result = ModelPredictBlock().execute(context, config, None)
            batch_sizes.append(result.meta["batch_size"])

        bare(), batched(), block()  # load the model, warm the connections
        results = {}
        for name, function in (
            ("bare /predict", bare),
            ("bare /predict_rows", batched),
            ("model.predict block (/predict_rows)", block),
        ):
            samples = timed(function, args.calls)
            results[name] = {
                "p50_ms": percentile(samples, 0.5),
                "p99_ms": percentile(samples, 0.99),
            }
        for name, function in (
            ("/predict", bare),
            ("/predict_rows (adaptive batching)", batched),
            ("model.predict block", block),
        ):
            batch_sizes.clear()
            results[f"throughput {name}"] = {
                "requests_per_s": throughput(function, args.calls, args.clients),
                "clients": args.clients,
            }
            if batch_sizes:
                results[f"throughput {name}"]["mean_batch"] = sum(batch_sizes) / len(batch_sizes)
        for name, figures in results.items():
            print(f"{name:45} " + "  ".join(f"{k} {v:.1f}" for k, v in figures.items()))
        out = ROOT / "tests" / "bench" / "results"
        out.mkdir(parents=True, exist_ok=True)
        (out / "models.json").write_text(json.dumps(results, indent=2))
    finally:
        stop_process_group(service.process)
        stop_process_group(mlflow.process)


if __name__ == "__main__":
    main()
