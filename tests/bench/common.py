"""Helpers the benchmarks share: a private Postgres database, timing, CPU accounting."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager

import psutil


def create_database(url: str) -> None:
    """Create the database named at the end of ``url`` when it does not exist."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            admin.execute(f'CREATE DATABASE "{name}"')


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def timed(function: Callable[[], object], calls: int) -> list[float]:
    """Milliseconds each of ``calls`` sequential calls took."""
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


# --- CPU accounting: where a benchmark's CPU goes, by group of processes -------------
# CPU time is read from each process (psutil, /proc), so the figures hold whatever else
# the machine is doing; wall-clock ones do not.
ProcessFinder = Callable[[], list[psutil.Process]]


def process_tree(pid: int) -> list[psutil.Process]:
    parent = psutil.Process(pid)
    return [parent, *parent.children(recursive=True)]


def worker_processes(workers: list) -> list[psutil.Process]:
    """The processes of ``tests.support.workers.WorkerProcess`` workers (pool children too)."""
    return [p for w in workers for p in process_tree(w.process.pid)]


def database_backends() -> list[psutil.Process]:
    """The Postgres backends serving this benchmark's database (``DATABASE_URL``, set by
    ``bench_engine``), this machine's server."""
    import psycopg

    url = os.environ["DATABASE_URL"]
    with psycopg.connect(url) as conn:
        pids = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [url.rsplit("/", 1)[1]],
        ).fetchall()
    backends = []
    for (pid,) in pids:
        try:
            backends.append(psutil.Process(pid))
        except psutil.NoSuchProcess:  # it ended since the query
            continue
    return backends


def process_groups(
    *,
    web_pid: int | None = None,
    workers: list | None = None,
    load_generator: bool = False,
    **more: ProcessFinder,
) -> dict[str, ProcessFinder]:
    """The groups ``cpu_per_run`` reports: the web server's process tree, the workers, the
    Postgres backends, this process (the load generator) when asked, and ``more``."""
    groups: dict[str, ProcessFinder] = {}
    if web_pid is not None:
        groups["web_server"] = lambda: process_tree(web_pid)
    if workers is not None:
        groups["workers"] = lambda: worker_processes(workers)
    groups["postgres"] = database_backends
    if load_generator:
        groups["load_generator"] = lambda: [psutil.Process()]
    return {**groups, **more}


def cpu_seconds_by_pid(processes: list[psutil.Process]) -> dict[int, float]:
    """Each process's CPU seconds so far (user + system), of those still running."""
    seconds = {}
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        seconds[process.pid] = times.user + times.system
    return seconds


@contextmanager
def cpu_per_run(
    groups: dict[str, ProcessFinder], runs: int, apart: Collection[str] = ()
) -> Iterator[dict]:
    """CPU milliseconds per run spent by each group of processes while the block runs.
    Groups are looked up again at the end (new database backends may have appeared; they
    started from zero). A process that ended during the block is left out (its CPU
    before the block was subtracted from the others' before, which made Postgres's figure
    negative when a backend closed): its share is missing, never negative. A child the
    block ran and reaped itself (a load generator: ``loadgen.run_child`` reads its CPU as
    it ends) is added by the block: ``figures[label] = ms_per_run`` (to a group of that
    label, or as a label of its own). Labels in ``apart`` stay out of the total."""
    before = {label: {p.pid: p for p in find()} for label, find in groups.items()}
    start = {label: cpu_seconds_by_pid(list(found.values())) for label, found in before.items()}
    figures: dict[str, float] = {}
    yield figures
    for label, find in groups.items():
        found = {**before[label], **{p.pid: p for p in find()}}
        end = cpu_seconds_by_pid(list(found.values()))
        spent = sum(seconds - start[label].get(pid, 0.0) for pid, seconds in end.items())
        figures[label] = spent * 1000 / runs + figures.get(label, 0.0)
    for label, value in figures.items():
        figures[label] = round(value, 2)
    figures["total"] = round(sum(v for k, v in figures.items() if k not in apart), 2)
