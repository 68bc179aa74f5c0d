"""AI serving: the toy language model through the model service's OpenAI-compatible API,
against the classic-model call on the same service as a floor.

Run: ``python tests/bench/bench_ai.py [--calls N]``. Starts MLflow and the BentoML model
service (the studio's own process specs) on loopback ports with a temporary registry,
trains ``claim-fraud`` and the toy ``support-writer``, then measures the latency (p50/p99)
of N sequential calls: ``/predict_rows`` (one claim-fraud row: the floor), chat completions
of 1 and 64 tokens, ``guided_choice`` over three labels, JSON-schema-guided decoding, and
the ``ai.generate`` block (64 tokens). Prints the figures, the ratio of each to the floor,
and writes tests/bench/results/ai.json. Figures, not asserts.

``--concurrent C`` (a few minutes more) also trains the GPT-2-style ``support-writer-gpt``
and sends C concurrent chat requests (distinct prompts, 32 greedy tokens each, 4 rounds) to
two services on the same registry: batching off (``FLOWGATE_LM_BATCH_SIZE=1``) and on
(the default): requests per second, the service's CPU-ms per generated token, and the
forward passes per decode step it reports (``/info``).
"""

from __future__ import annotations

import argparse
import dataclasses
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

from apps.audit.redaction import WorkspaceRedaction  # noqa: E402
from apps.mlmodels.ai_blocks import AIGenerateBlock, GenerateConfig  # noqa: E402
from apps.mlmodels.blocks import ModelServiceClient  # noqa: E402
from apps.mlmodels.training import (  # noqa: E402
    CLAIM_FRAUD,
    SUPPORT_WRITER,
    SUPPORT_WRITER_GPT,
    train_demo_models,
)
from studio.processes import mlflow_process, model_service_process  # noqa: E402
from tests.bench.common import cpu_per_run, percentile, process_tree, timed  # noqa: E402
from tests.blocks.fakes import FakeContext  # noqa: E402
from tests.mlmodels.helpers import CLAIM  # noqa: E402
from tests.support.model_stack import _start  # noqa: E402
from tests.support.processes import free_ports, stop_process_group  # noqa: E402

MESSAGES = [{"role": "user", "content": "hello team production is down"}]
SCHEMA = {
    "type": "object",
    "properties": {
        "urgency": {"type": "string", "enum": ["urgent", "normal", "low"]},
        "summary": {"type": "string"},
    },
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--concurrent", type=int, default=0)
    args = parser.parse_args()
    mlflow_port, service_port = free_ports(2)
    mlflow_url, service_url = f"http://127.0.0.1:{mlflow_port}", f"http://127.0.0.1:{service_port}"
    var_dir = Path(tempfile.mkdtemp(prefix="flowgate-bench-"))
    mlflow = _start(mlflow_process(tracking_uri=mlflow_url, var_dir=var_dir), mlflow_url)
    service = _start(
        model_service_process(service_url=service_url, tracking_uri=mlflow_url), service_url
    )
    try:
        mlflow.wait("/health")
        service.wait("/readyz")
        train_demo_models(tracking_uri=mlflow_url, names=(CLAIM_FRAUD, SUPPORT_WRITER), rows=300)
        http = httpx.Client(timeout=30)

        def post(path: str, body: dict) -> None:
            http.post(f"{service_url}{path}", json=body).raise_for_status()

        def chat(**extra) -> None:
            post("/v1/chat/completions", {"model": SUPPORT_WRITER, "messages": MESSAGES, **extra})

        context = FakeContext(
            scope={"trigger": {"body": {"issue": "production is down"}}},
            services={
                "models": ModelServiceClient("bench", base_url=service_url),
                "redaction": WorkspaceRedaction(None),  # no workspace: credential keys only
            },
        )
        config = GenerateConfig(
            model=SUPPORT_WRITER, prompt="{{ trigger.body.issue }}", max_tokens=64
        )
        cases = {
            "floor: /predict_rows (claim-fraud, 1 row)": lambda: post(
                "/predict_rows", {"rows": [{"model": CLAIM_FRAUD, "version": "2", "inputs": CLAIM}]}
            ),
            "chat, 1 token": lambda: chat(max_tokens=1),
            "chat, 64 tokens": lambda: chat(max_tokens=64),
            "chat, guided_choice (3 labels)": lambda: chat(
                guided_choice=["urgent", "normal", "low"]
            ),
            "chat, guided JSON (enum + string)": lambda: chat(guided_json=SCHEMA),
            "ai.generate block, 64 tokens": lambda: AIGenerateBlock().execute(
                context, config, None
            ),
        }
        for function in cases.values():
            function()  # load the models, warm the connections
        results = {}
        for name, function in cases.items():
            samples = timed(function, args.calls)
            results[name] = {
                "p50_ms": percentile(samples, 0.5),
                "p99_ms": percentile(samples, 0.99),
            }
        floor = results["floor: /predict_rows (claim-fraud, 1 row)"]["p50_ms"]
        for name, figures in results.items():
            figures["p50_vs_floor"] = figures["p50_ms"] / floor
            print(f"{name:45} " + "  ".join(f"{k} {v:.1f}" for k, v in figures.items()))
        out = ROOT / "tests" / "bench" / "results"
        out.mkdir(parents=True, exist_ok=True)
        if args.concurrent:
            train_demo_models(tracking_uri=mlflow_url, names=(SUPPORT_WRITER_GPT,), rows=300)
            for batching in ("off", "on"):
                name = f"gpt, {args.concurrent} concurrent, batching {batching}"
                results[name] = concurrent_chats(mlflow_url, args.concurrent, batching == "on")
                print(f"{name:45} " + "  ".join(f"{k} {v:.2f}" for k, v in results[name].items()))
        (out / "ai.json").write_text(json.dumps(results, indent=2))
    finally:
        stop_process_group(service.process)
        stop_process_group(mlflow.process)


def concurrent_chats(mlflow_url: str, clients: int, batching: bool) -> dict:
    """Throughput and service CPU per token of ``clients`` concurrent greedy chats with
    the GPT model, on a service of its own (batching on or off)."""
    [port] = free_ports(1)
    url = f"http://127.0.0.1:{port}"
    spec = model_service_process(service_url=url, tracking_uri=mlflow_url)
    if not batching:
        spec = dataclasses.replace(
            spec, environment={**spec.environment, "FLOWGATE_LM_BATCH_SIZE": "1"}
        )
    service = _start(spec, url)
    http = httpx.Client(timeout=120)

    def chat(client: int) -> int:
        body = {
            "model": SUPPORT_WRITER_GPT,
            "messages": [{"role": "user", "content": f"ticket {client}: production is down"}],
            "max_tokens": 32,
        }
        answer = http.post(f"{url}/v1/chat/completions", json=body)
        answer.raise_for_status()
        return int(answer.json()["usage"]["completion_tokens"])

    try:
        service.wait("/readyz")
        chat(-1)  # load the model
        rounds = 4
        info = http.post(f"{url}/info", json={}).json()["loaded"]
        before = next(e for e in info if e["model"] == SUPPORT_WRITER_GPT)
        started = time.perf_counter()
        with (
            cpu_per_run({"service": lambda: process_tree(service.process.pid)}, 1) as cpu_ms,
            ThreadPoolExecutor(clients) as pool,
        ):
            tokens = sum(pool.map(chat, range(clients * rounds)))
        seconds = time.perf_counter() - started
        info = http.post(f"{url}/info", json={}).json()["loaded"]
        after = next(e for e in info if e["model"] == SUPPORT_WRITER_GPT)
        steps = after["decode_steps"] - before["decode_steps"]
        return {
            "requests_per_s": clients * rounds / seconds,
            "service_cpu_ms_per_token": cpu_ms["service"] / max(tokens, 1),
            "passes_per_step": (after["forward_passes"] - before["forward_passes"]) / max(steps, 1),
        }
    finally:
        stop_process_group(service.process)


if __name__ == "__main__":
    main()
