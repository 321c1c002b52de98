#!/usr/bin/env python3
"""Benchmark: draining a Resque queue (``docs/resque.md``), side by side in one run.

``--n`` no-op jobs (20,000 by default) in Ruby's shape (``{"class":"Noop","args":[i]}``) pushed onto
``resque:queue:bench``, drained by one worker process of each:

- **node-resque** 9.7.1 (``tests/interop/node``; its ``Worker`` with its defaults, but a 10 ms idle
  poll): the fastest Resque-family worker available here (Ruby's and PHP's fork a process per job);
- **resq** ``worker --resque-queues bench --burst -c 1``: each job moved into the worker's in-flight hash,
  made a resq job, run with resq's guarantees, counted in ``resque:stat:processed``;
- **resq, native**: the same no-op enqueued with ``task.map`` and drained by ``resq worker --burst -c 1``
  (what the Resque path costs on top of resq's own).

Reports jobs/s, the ratio to node-resque and Redis commands per job (commands inside Lua included), and
checks that every job ran once. Starts a private, throw-away ``redis-server`` (free port, no persistence;
never 6379). Needs node and ``make test``'s ``npm ci`` in ``tests/interop/node``.

Usage:  .venv/bin/python bench/resque.py [--n 20000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from throughput import BenchRedis, run_timed

ROOT = Path(__file__).resolve().parent.parent
NODE = ROOT / "tests" / "interop" / "node"
RESULTS = Path(__file__).resolve().parent / "results" / "resque.md"
WORKER = [
    sys.executable, "-m", "resq", "worker", "-A", "bench.resque_app:app", "-c", "1", "--burst",
    "--log-level", "warning",
]  # fmt: skip


def fill_resque(server: BenchRedis, n: int) -> None:
    pipe = server.client.pipeline(transaction=False)
    pipe.sadd("resque:queues", "bench")
    for i in range(n):
        pipe.rpush("resque:queue:bench", json.dumps({"class": "Noop", "args": [i]}, separators=(",", ":")))
    pipe.execute()


def node_resque(server: BenchRedis, n: int) -> float:
    done = subprocess.run(
        ["node", "resque.js", "drain", str(server.port), "resque", "bench", str(n), "Noop"],
        cwd=NODE,
        capture_output=True,
        text=True,
        timeout=1800,
        check=True,
    )
    seconds: float = json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
    return seconds


def startup(server: BenchRedis) -> float:
    """Seconds a resq worker takes to start and exit on empty queues (Python's start-up, the fork): taken
    off resq's times, since node-resque's is timed from its worker's start."""
    server.client.flushall()
    return statistics.median(run_timed([*WORKER, "--resque-queues", "bench"], server.url, timeout=60) for _ in range(3))


def resq_resque(server: BenchRedis, n: int) -> float:
    elapsed = run_timed([*WORKER, "--resque-queues", "bench"], server.url, timeout=1800) - STARTUP[0]
    processed = int(server.client.get("resque:stat:processed") or 0)
    if processed != n or server.client.llen("resque:queue:bench"):
        raise RuntimeError(f"resq ran {processed} of {n} Resque jobs")
    return elapsed


def resq_native(server: BenchRedis, n: int) -> float:
    from bench.resque_app import noop

    noop.map(range(n))
    return run_timed([*WORKER, "-q", "default"], server.url, timeout=1800) - STARTUP[0]


#: The start-up time measured once per run (``startup``).
STARTUP = [0.0]


def measure(
    server: BenchRedis, n: int, fill: Callable[[BenchRedis, int], None], drain: Callable[..., float]
) -> tuple[float, float]:
    server.client.flushall()
    fill(server, n)
    before = server.counters()
    seconds = drain(server, n)
    commands, _ = server.per_job(before, n)
    return n / seconds, commands


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    server = BenchRedis()
    os.environ["RESQ_REDIS_URL"] = server.url
    variants: dict[str, tuple[Callable[[BenchRedis, int], None], Callable[..., float]]] = {
        "node-resque Worker": (fill_resque, node_resque),
        "resq worker --resque-queues": (fill_resque, resq_resque),
        "resq worker, native jobs": (lambda s, n: None, resq_native),
    }
    rows: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    try:
        from bench.resque_app import app

        app.reconfigure(url=server.url)
        STARTUP[0] = startup(server)
        measure(server, min(args.n, 2000), fill_resque, resq_resque)  # a warm-up
        for run in range(args.runs):  # rounds interleaved, so a slower minute of the machine hits all
            for name, (fill, drain) in variants.items():
                rows[name].append(measure(server, args.n, fill, drain))
                print(f"  run {run + 1} {name}: {rows[name][-1][0]:,.0f} jobs/s", flush=True)
    finally:
        server.close()
    base = statistics.median(r for r, _ in rows["node-resque Worker"])
    lines = [
        "# Draining a Resque queue",
        "",
        f"`bench/resque.py --n {args.n} --runs {args.runs}` ({time.strftime('%Y-%m-%d')}): {args.n:,} no-op jobs in",
        "Ruby's shape on `resque:queue:bench`, one worker process each, medians of interleaved runs; Redis",
        "commands per job include those inside Lua scripts. resq's times leave out its start-up",
        f"({STARTUP[0]:.2f} s, a burst run on empty queues), as node-resque's is timed from its worker's start.",
        "",
        "| worker | jobs/s | vs node-resque | Redis commands / job |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, found in rows.items():
        rate = statistics.median(r for r, _ in found)
        commands = statistics.median(c for _, c in found)
        lines.append(f"| {name} | {rate:,.0f} | {rate / base:.2f}x | {commands:.1f} |")
    text = "\n".join(lines) + "\n"
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
