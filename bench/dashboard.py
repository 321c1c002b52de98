#!/usr/bin/env python3
"""Benchmark: the dashboard's server time with 100,000 jobs queued and 10,000 dead (issue 12, "Scale").

Starts a private, throw-away ``redis-server`` (never 6379). Fills it through resq's own API: ``--dead`` jobs
of a task that always fails with ``retries=0`` (``Task.map``, then one ``resq worker --burst`` drains them
into the dead set), then ``--queued`` jobs spread over three queues with ``Task.map`` (bulk enqueue; no
worker runs them). Then, in this process, ``resq.web.create_app(app)`` behind Starlette's ``TestClient``:
for each page, 3 warm-up requests and ``--requests`` timed ones. Server time is measured by an ASGI wrapper
around the dashboard (from the call to the end of the response body), so the test client's own overhead is
left out. Redis's ``INFO commandstats`` (reset before each page) gives the commands per request and shows
that no page load scans the keyspace (``SCAN``/``KEYS`` would appear there).

Goal (issue 12): the overview answers in under 100 ms of server time. Writes ``bench/results/dashboard.md``.
Timing goals live here, never in tests.

Usage:  .venv/bin/python bench/dashboard.py [--queued 100000] [--dead 10000] [--requests 30]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from private_redis import PrivateRedis

from resq import Resq

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results" / "dashboard.md"
GOAL_MS = 100.0
#: The pages timed: the overview and its live-update feed carry the goal; the others are for reference.
PAGES = [
    ("/", True),
    ("/api/stats", True),
    ("/queues", False),
    ("/queues/default", False),
    ("/workers", False),
    ("/scheduled", False),
    ("/dead", False),
    ("/dead?error=ConnectionError", False),
]
QUEUES = ["default", "mail", "reports"]

#: The benchmark's app (``-A bench.dashboard:app`` for the burst worker; Redis from ``RESQ_REDIS_URL``).
app = Resq()


@app.task(name="bench.dash.work")
def work(i: int) -> int:
    """A job that stays queued (no worker serves its queues)."""
    return i


@app.task(name="bench.dash.charge", queue="payments", retries=0)
def charge(i: int) -> None:
    """Always fails at once: its jobs go dead with a real traceback."""
    raise ConnectionError(f"payment gateway refused order {i}: connection reset by peer")


def fill(server: PrivateRedis, queued: int, dead: int) -> dict[str, float]:
    """Fill Redis: ``dead`` dead jobs (through a burst worker), then ``queued`` waiting jobs; seconds each."""
    app.reconfigure(url=server.url)
    t0 = time.perf_counter()
    charge.map(range(dead))
    env = dict(os.environ, RESQ_REDIS_URL=server.url, PYTHONPATH=os.pathsep.join([str(ROOT), str(BENCH)]))
    cmd = [sys.executable, "-m", "resq", "worker", "-A", "bench.dashboard:app", "-q", "payments", "--burst", "-c", "2"]
    with tempfile.TemporaryFile() as log:  # one failure and one dead line per job: kept out of the terminal
        code = subprocess.run(cmd, cwd=ROOT, env=env, stdout=log, stderr=log, timeout=900, check=False).returncode
        if code != 0:
            log.seek(0)
            raise RuntimeError(f"the burst worker exited {code}:\n{log.read()[-3000:].decode(errors='replace')}")
    t1 = time.perf_counter()
    per_queue = queued // len(QUEUES)
    for n, queue in enumerate(QUEUES):
        count = per_queue if n < len(QUEUES) - 1 else queued - per_queue * (len(QUEUES) - 1)
        work.map(range(count), queue=queue)
    t2 = time.perf_counter()
    return {"dead_s": t1 - t0, "queued_s": t2 - t1}


def check(queued: int, dead: int) -> None:
    """The scene is what the benchmark claims: ``queued`` waiting jobs and ``dead`` dead ones."""
    from resq.ops import Inspector

    inspector = Inspector(app)
    waiting = sum(q.waiting for q in inspector.queues())
    dead_now = inspector.dead_count()
    if waiting < queued or dead_now != dead:
        raise RuntimeError(f"expected {queued:,} queued and {dead:,} dead, found {waiting:,} and {dead_now:,}")


class Timed:
    """An ASGI wrapper recording each HTTP request's server time (call to end of the response body), in ms."""

    def __init__(self, asgi: Any) -> None:
        self.asgi = asgi
        self.samples: list[float] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.asgi(scope, receive, send)
            return
        t0 = time.perf_counter()
        await self.asgi(scope, receive, send)
        self.samples.append(1000 * (time.perf_counter() - t0))


def redis_calls(server: PrivateRedis) -> dict[str, int]:
    """Calls per command since the last ``CONFIG RESETSTAT`` (the INFO call itself left out)."""
    stats = server.client.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): int(row["calls"]) for name, row in stats.items()}
    calls.pop("info", None)
    return calls


def time_pages(server: PrivateRedis, requests: int) -> list[dict[str, Any]]:
    warnings.filterwarnings("ignore", message=".*starlette.testclient.*")  # its advice to install httpx2
    from starlette.testclient import TestClient

    from resq.web import create_app

    timed = Timed(create_app(app))
    rows = []
    with TestClient(timed) as client:
        for path, goal in PAGES:
            for _ in range(3):
                client.get(path)
            timed.samples.clear()
            server.client.config_resetstat()
            for _ in range(requests):
                response = client.get(path)
                if response.status_code != 200:
                    raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:500]}")
            calls = redis_calls(server)
            samples = sorted(timed.samples)
            rows.append(
                {
                    "path": path,
                    "goal": goal,
                    "median": statistics.median(samples),
                    "p95": samples[max(0, round(0.95 * len(samples)) - 1)],
                    "max": samples[-1],
                    "bytes": len(response.content),
                    "commands": sum(calls.values()) / requests,
                    "scans": sorted(c for c in calls if c in {"scan", "keys", "sscan", "hscan", "zscan"}),
                }
            )
            print(
                f"{path}: median {rows[-1]['median']:.1f} ms, p95 {rows[-1]['p95']:.1f} ms, "
                f"{rows[-1]['commands']:.0f} Redis commands/request, scans: {rows[-1]['scans'] or 'none'}",
                flush=True,
            )
    return rows


def report(args: argparse.Namespace, version: str, took: dict[str, float], rows: list[dict[str, Any]]) -> str:
    met = all(r["p95"] < GOAL_MS for r in rows if r["goal"])
    lines = [
        "# Dashboard: server time at scale",
        "",
        f"Written by `bench/dashboard.py` (`--queued {args.queued} --dead {args.dead} --requests {args.requests}`), "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; {platform.python_implementation()} "
        f"{platform.python_version()}, Redis {version}, {os.cpu_count()} CPUs.",
        "",
        f"A private Redis holds {args.queued:,} queued jobs (three queues, no worker) and {args.dead:,} dead ones "
        f"(real tracebacks). Filled in {took['queued_s']:.1f} s (bulk enqueue) and {took['dead_s']:.1f} s "
        "(enqueue + one burst worker). Each page: 3 warm-up requests, then the figures of "
        f"{args.requests} requests, server time only (an ASGI wrapper around `resq.web.create_app`, in process, "
        "through Starlette's `TestClient`). Redis commands per request from `INFO commandstats`.",
        "",
        "| page | median ms | p95 ms | max ms | Redis commands/request | keyspace scans | response bytes |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        name = f"`{r['path']}`" + (" (goal)" if r["goal"] else "")
        scans = ", ".join(r["scans"]) or "none"
        lines.append(
            f"| {name} | {r['median']:.1f} | {r['p95']:.1f} | {r['max']:.1f} | {r['commands']:.0f} | {scans} "
            f"| {r['bytes']:,} |"
        )
    overview = next(r for r in rows if r["path"] == "/")
    lines += [
        "",
        f"Goal: the overview in under {GOAL_MS:.0f} ms of server time (p95 of `/` and `/api/stats`): "
        + (
            f"**met** (overview p95 {overview['p95']:.1f} ms)."
            if met
            else f"**not met** (overview p95 {overview['p95']:.1f} ms)."
        ),
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queued", type=int, default=100_000, help="jobs left waiting")
    parser.add_argument("--dead", type=int, default=10_000, help="dead jobs")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    server = PrivateRedis()
    try:
        took = fill(server, args.queued, args.dead)
        print(
            f"filled: {args.dead:,} dead in {took['dead_s']:.1f} s, {args.queued:,} queued in {took['queued_s']:.1f} s"
        )
        check(args.queued, args.dead)
        rows = time_pages(server, args.requests)
        text = report(args, server.version(), took, rows)
    finally:
        server.close()
    args.out.write_text(text)
    print(text)
    print(f"written: {args.out}")
    return 0 if all(r["p95"] < GOAL_MS for r in rows if r["goal"]) else 1


if __name__ == "__main__":
    sys.exit(main())
