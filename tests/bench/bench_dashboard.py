"""The dashboard at volume: the page and its JSON API with 1,000,000 runs and 10,000,000
step attempts in the database.

Generates the volume in SQL (``generate_series``, one INSERT per table, triggers off while
loading, the rows stamped as ended before the rollups existed), spread over the last 7
days in one workspace with 8 flows (a second workspace gets 5 % of it): runs 93 %
succeeded, 5 % failed, 1 % cancelled, plus runs still waiting, queued and running; 10
attempts per run over 8 block types with log-normal durations, model, AI and policy steps
with their latency, cost and tokens in ``meta``; a review backlog. Then one materialiser
pass counts it all (timed), and the page and ``GET /api/w/<ws>/dashboard/`` are
requested ``--calls`` times per range through Django's test client (the whole Django
stack, no network), each after a materialiser pass that finds a few runs that ended
since (``--ending`` per request, as a busy deployment would). Per request: wall time,
the web process's CPU and the Postgres backend's CPU (from /proc).

Run: ``python tests/bench/bench_dashboard.py [--runs N] [--calls N] [--keep]``. Uses its
own database (``BENCH_DATABASE_URL``, default ``flowgate_bench_dashboard``), created and
migrated, and DROPPED at the end unless ``--keep`` (then drop it with
``dropdb flowgate_bench_dashboard``). Prints the figures and writes
tests/bench/results/dashboard.json. Figures, not asserts: the target is p95 ≤ 200 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/flowgate_bench_dashboard"
)
os.environ["DATABASE_URL"] = DATABASE_URL
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/13")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings.test")

from tests.bench.common import create_database, percentile  # noqa: E402

create_database(DATABASE_URL)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402
from django.test import Client  # noqa: E402

RANGES = ("today", "1h", "24h", "7d")
BLOCKS = (
    # node, block type, log-normal duration (median ms, spread)
    ("start", "trigger.manual", 0.05, 0.5),
    ("check", "transform.set", 0.4, 0.6),
    ("route", "logic.condition", 0.2, 0.6),
    ("score", "model.predict", 35.0, 0.5),
    ("decide", "policy.evaluate", 0.8, 0.7),
    ("draft", "ai.generate", 900.0, 0.6),
    ("notify", "connector.http", 120.0, 0.9),
    ("shape", "transform.set", 0.3, 0.6),
    ("store", "connector.sql", 8.0, 0.8),
    ("reply", "flow.respond", 0.1, 0.5),
)


def log_normal(median: float, spread: float) -> str:
    """A SQL expression drawing from a log-normal distribution (Box-Muller)."""
    return f"({median} * exp({spread} * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())))"


def generate(runs: int) -> dict[str, float]:
    """Workspaces, flows and users by the ORM; runs and steps in SQL."""
    from apps.accounts.models import Membership, User, Workspace
    from apps.flows.models import Flow

    main, _ = Workspace.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    other, _ = Workspace.objects.get_or_create(slug="other", defaults={"name": "Other"})
    user, _ = User.objects.get_or_create(username="bench")
    Membership.objects.get_or_create(user=user, workspace=main, defaults={"role": "admin"})
    flows = [
        Flow.objects.get_or_create(workspace=main, slug=f"flow-{n}", defaults={"name": f"F{n}"})[0]
        for n in range(8)
    ] + [Flow.objects.get_or_create(workspace=other, slug="o", defaults={"name": "O"})[0]]
    flow_ids = "ARRAY[" + ",".join(f"'{flow.id}'::uuid" for flow in flows) + "]"
    timings = {}
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")  # no triggers, no FK checks
        cursor.execute("SET maintenance_work_mem = '512MB'")
        cursor.execute("SET synchronous_commit = off")
        rebuild = drop_indexes(cursor, ("runs_run", "runs_steprun"))
        started = time.perf_counter()
        cursor.execute(
            f"""
            INSERT INTO runs_run (id, workspace_id, flow_id, status, trigger, input, dry_run,
                correlation_id, parent_node, created_at, started_at, finished_at, updated_at,
                lease_owner, deliveries, trace_context, rollup_xid)
            SELECT gen_random_uuid(), CASE WHEN f < 9 THEN %(main)s ELSE %(other)s END::uuid,
                   ({flow_ids})[f], status, 'webhook', '{{}}', false, md5(n::text), '',
                   created, created, ended, ended, '', 1, '{{}}',
                   CASE WHEN status IN ('succeeded', 'failed', 'cancelled') THEN 1 END
              FROM (SELECT n, CASE WHEN n %% 20 = 0 THEN 9 ELSE 1 + n %% 8 END AS f,
                           CASE WHEN n <= 3000 THEN 'waiting' WHEN n <= 3200 THEN 'queued'
                                WHEN n <= 3300 THEN 'running'
                                WHEN n %% 100 < 5 THEN 'failed'
                                WHEN n %% 100 = 5 THEN 'cancelled' ELSE 'succeeded' END AS status,
                           now() - random() * interval '7 days' AS created
                      FROM generate_series(1, %(runs)s) AS n) AS drawn,
                   LATERAL (SELECT created + random() * interval '3 seconds' AS ended) AS e
            """,
            {"main": str(main.id), "other": str(other.id), "runs": runs},
        )
        timings["runs_s"] = time.perf_counter() - started
        started = time.perf_counter()
        nodes = "ARRAY[" + ",".join(f"'{node}'" for node, *_ in BLOCKS) + "]"
        types = "ARRAY[" + ",".join(f"'{block}'" for _, block, *_ in BLOCKS) + "]"
        durations = "ARRAY[" + ",".join(log_normal(m, s) for *_, m, s in BLOCKS) + "]"
        cursor.execute(
            f"""
            INSERT INTO runs_steprun (run_id, node_id, block_type, block_version, attempt,
                status, port, meta, wait_kind, wait_reference, started_at, finished_at,
                duration_ms, rollup_xid)
            SELECT run.id, ({nodes})[k], ({types})[k], 1, 1, drawn.status, '',
                   CASE ({types})[k]
                     WHEN 'model.predict' THEN jsonb_build_object('model', 'claim-fraud',
                          'latency_ms', ms * 0.9, 'cost', 0.0004)
                     WHEN 'ai.generate' THEN jsonb_build_object('model', 'writer',
                          'latency_ms', ms * 0.95, 'cost', 0.002,
                          'usage', jsonb_build_object('total', 300))
                     WHEN 'policy.evaluate' THEN jsonb_build_object('policy', 'claims',
                          'policy_version', '3', 'duration_ms', ms * 0.5)
                     ELSE '{{}}' END,
                   CASE WHEN drawn.status = 'waiting' THEN 'approval' ELSE '' END, '',
                   run.created_at, run.finished_at, ms, CASE WHEN drawn.status IN
                   ('succeeded', 'failed') THEN 1 END
              FROM runs_run AS run, generate_series(1, 10) AS k,
                   LATERAL (SELECT ({durations})[k] AS ms,
                        CASE WHEN run.status = 'failed' AND k = 10 THEN 'failed'
                             WHEN run.status = 'waiting' AND k = 10 THEN 'waiting'
                             WHEN run.status IN ('queued', 'running') AND k > 1 THEN 'skipped'
                             ELSE 'succeeded' END AS status) AS drawn
            """
        )
        timings["steps_s"] = time.perf_counter() - started
        started = time.perf_counter()
        for statement in rebuild:
            cursor.execute(statement)
        timings["indexes_s"] = time.perf_counter() - started
        cursor.execute("SET session_replication_role = origin")
        cursor.execute("ANALYZE runs_run; ANALYZE runs_steprun")
        cursor.execute("SELECT count(*) FROM runs_run")
        timings["runs"] = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM runs_steprun")
        timings["steps"] = cursor.fetchone()[0]
    backlog(main, user)
    return timings


def drop_indexes(cursor, tables: tuple[str, ...]) -> list[str]:
    """Drop the tables' indexes and unique constraints but their primary keys (a bulk
    load then builds each index once, sorted, instead of row by row); return the
    statements that make them again."""
    cursor.execute(
        """SELECT conname, conrelid::regclass::text, pg_get_constraintdef(oid)
             FROM pg_constraint WHERE conrelid::regclass::text = ANY(%s) AND contype = 'u'""",
        [list(tables)],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        """SELECT indexname, indexdef FROM pg_indexes
            WHERE tablename = ANY(%s) AND indexname NOT LIKE '%%pkey'
              AND indexname NOT IN (SELECT conname FROM pg_constraint)""",
        [list(tables)],
    )
    indexes = cursor.fetchall()
    for name, table, _ in constraints:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    return [definition for _, definition in indexes] + [
        f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'
        for name, table, definition in constraints
    ]


def backlog(workspace, user) -> None:
    """Open review tasks on 200 of the waiting runs."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT column_name, data_type FROM information_schema.columns
                WHERE table_name = 'inbox_reviewtask' AND is_nullable = 'NO'
                  AND column_default IS NULL"""
        )
        columns = dict(cursor.fetchall())
    values = {
        "id": "gen_random_uuid()",
        "workspace_id": "run.workspace_id",
        "run_id": "run.id",
        "flow_id": "run.flow_id",
        "created_at": "run.created_at",
        "updated_at": "run.created_at",
        "status": "'open'",
        "node_id": "'approve'",
    }
    defaults = {
        "jsonb": "'{}'",
        "integer": "0",
        "smallint": "0",
        "boolean": "false",
        "text": "''",
        "character varying": "''",
        "timestamp with time zone": "now()",
        "uuid": "gen_random_uuid()",
        "ARRAY": "'{}'",
    }
    chosen = {name: values.get(name, defaults.get(kind, "NULL")) for name, kind in columns.items()}
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO inbox_reviewtask ({", ".join(chosen)})
                SELECT {", ".join(chosen.values())} FROM runs_run AS run
                 WHERE run.status = 'waiting' AND run.workspace_id = %s LIMIT 200""",
            [str(workspace.id)],
        )


def end_some_runs(count: int) -> None:
    """``count`` waiting runs end (with their waiting step): what the next pass counts."""
    with connection.cursor() as cursor:
        cursor.execute(
            """WITH ended AS (
                   UPDATE runs_run SET status = 'succeeded', finished_at = now(), updated_at = now()
                    WHERE id IN (SELECT id FROM runs_run WHERE status = 'waiting' LIMIT %s)
                   RETURNING id)
               UPDATE runs_steprun SET status = 'succeeded', finished_at = now(), duration_ms = 5
                WHERE run_id IN (SELECT id FROM ended) AND status = 'waiting'""",
            [count],
        )


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(client: Client, url: str, calls: int, ending: int) -> dict[str, float]:
    from apps.dashboard.rollups import materialise

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    walls, web_cpu, db_cpu = [], [], []
    client.get(url, secure=True)  # warm: templates compiled, plans cached
    for _ in range(calls):
        if ending:
            end_some_runs(ending)
        started, cpu, db = time.perf_counter(), time.process_time(), cpu_seconds(backend)
        response = client.get(url, secure=True)
        walls.append((time.perf_counter() - started) * 1000)
        web_cpu.append((time.process_time() - cpu) * 1000)
        db_cpu.append((cpu_seconds(backend) - db) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    materialise()
    return {
        "p50_ms": round(percentile(walls, 0.5), 1),
        "p95_ms": round(percentile(walls, 0.95), 1),
        "max_ms": round(max(walls), 1),
        "web_cpu_ms_mean": round(sum(web_cpu) / calls, 1),
        "db_cpu_ms_mean": round(sum(db_cpu) / calls, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--ending", type=int, default=3, help="runs ending before each request")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    options = parser.parse_args()
    try:
        call_command("migrate", verbosity=0)
        results: dict = {"generated": generate(options.runs)}
        from apps.dashboard.models import Rollup
        from apps.dashboard.rollups import materialise

        started = time.perf_counter()
        materialise()
        results["first_materialise_s"] = round(time.perf_counter() - started, 1)
        results["rollup_rows"] = Rollup.objects.count()
        print(json.dumps(results, indent=2), flush=True)

        client = Client(HTTP_HOST="localhost")
        from apps.accounts.models import User

        client.force_login(User.objects.get(username="bench"))
        for range_name in RANGES:
            for name, url in (
                ("page", f"/w/bench/dashboard/?range={range_name}"),
                ("json", f"/api/w/bench/dashboard/?range={range_name}"),
            ):
                figures = measure(client, url, options.calls, options.ending)
                results[f"{name} {range_name}"] = figures
                print(name, range_name, figures, flush=True)
        results["metrics"] = measure(client, "/metrics", max(options.calls // 4, 3), 0)
        print("metrics", results["metrics"], flush=True)
        results["load_average"] = os.getloadavg()
        out = ROOT / "tests/bench/results/dashboard.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
    finally:
        connections.close_all()
        if not options.keep:
            import psycopg

            name = DATABASE_URL.rsplit("/", 1)[1]
            with psycopg.connect(DATABASE_URL.rsplit("/", 1)[0] + "/postgres") as admin:
                admin.autocommit = True
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            print(f"dropped {name}")


if __name__ == "__main__":
    main()
