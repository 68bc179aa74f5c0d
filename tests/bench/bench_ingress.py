"""The webhook door alone: how fast the web server accepts async webhooks (202 after the
run's commit), with no worker draining them.

Run: ``python tests/bench/bench_ingress.py [--requests 3000] [--callers 64]
[--web-processes 1]``. Uses the engine benchmark's database (``BENCH_DATABASE_URL``) and
starts uvicorn as the studio does (pooled connections). ``--callers`` concurrent callers
post ``--requests`` webhooks of a flow whose webhook is async; reported: webhooks accepted
per second, p50/p99 of the answer's latency, and CPU milliseconds per webhook of the web
server and of the Postgres backends (the load generator, also on this machine, apart).
Results go to tests/bench/results/ingress.json; figures, not asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench import bench_engine as bench  # sets Django up, so first

# isort: split

import httpx
import psutil
from django.core.management import call_command

from apps.accounts.models import Role
from tests.bench.bench_io import web_server
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from tests.runs.helpers import definition, node, published_flow


def async_flow() -> dict:
    return definition(
        [
            node("hook", "trigger.webhook", mode="async"),
            node("reply", "flow.respond", body={"n": "trigger.body.n"}),
        ],
        [("hook", "reply")],
        name="Async webhook",
    )


async def post_all(url: str, token: str, requests: int, callers: int) -> tuple[float, list]:
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=callers, max_keepalive_connections=callers)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        numbers = iter(range(requests))

        async def caller() -> None:
            for n in numbers:
                started = time.perf_counter()
                try:
                    response = await client.post(f"/hooks/{token}", json={"n": n})
                except httpx.TransportError:  # a keep-alive connection the server closed
                    response = await client.post(f"/hooks/{token}", json={"n": n})
                if response.status_code != 202:
                    raise RuntimeError(f"{response.status_code}: {response.text}")
                latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(callers)))
        return time.perf_counter() - started, latencies


def main() -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--callers", type=int, default=64)
    parser.add_argument("--web-processes", type=int, default=1)
    parser.add_argument("--label", default="")
    arguments = parser.parse_args()
    call_command("migrate", verbosity=0)
    suffix = uuid.uuid4().hex[:8]
    workspace = WorkspaceFactory(slug=f"bench-ingress-{suffix}")
    user = MembershipFactory(
        user=UserFactory(username=f"bench-ingress-{suffix}"), workspace=workspace, role=Role.ADMIN
    ).user
    flow = published_flow(workspace, user, async_flow(), name="ingress")
    with web_server(arguments.web_processes) as (url, web_pid):
        asyncio.run(post_all(url, flow.webhook_token, 200, arguments.callers))  # warm-up
        groups = {
            "web_server": lambda: bench.process_tree(web_pid),
            "postgres": bench.database_backends,
            "load_generator": lambda: [psutil.Process()],
        }
        with bench.cpu_per_run(groups, arguments.requests) as cpu:
            seconds, latencies = asyncio.run(
                post_all(url, flow.webhook_token, arguments.requests, arguments.callers)
            )
    results = {
        "label": arguments.label,
        "cpus": psutil.cpu_count(),
        "load_average": psutil.getloadavg(),
        "web_processes": arguments.web_processes,
        "callers": arguments.callers,
        "webhooks": arguments.requests,
        "accepted_per_second": round(arguments.requests / seconds, 1),
        "answer_latency": bench.summary(latencies),
        "cpu_ms_per_webhook": cpu,
    }
    bench.RESULTS.mkdir(parents=True, exist_ok=True)
    name = f"ingress{'-' + arguments.label if arguments.label else ''}.json"
    (bench.RESULTS / name).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
