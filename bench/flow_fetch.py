#!/usr/bin/env python3
"""Benchmark: what flow control costs the fetch. One resq worker process drains N no-op jobs, enqueued
beforehand and untimed, in four shapes, side by side in the same run (rounds interleaved):

- ``plain``: no flow control (the hot path the performance issue measures against the peers);
- ``priorities``: the same jobs, half at priority 5 and half at 0 (two streams read highest first);
- ``concurrency``: a task with ``concurrency=1000`` (a slot taken and freed per job, never full);
- ``rate``: a task with ``rate_limit="1000000/s"`` (a start counted per job, never over).

Starts a private, throw-away ``redis-server`` (free port, no persistence; never 6379). Reports the median
drain rate of ``--runs`` runs (start-up included, as in ``throughput.py``), its ratio to ``plain``, and
Redis commands per job. Timing goals live here, never in tests: the issue asks for priorities within
1.3x of ``plain``.

Usage:  .venv/bin/python bench/flow_fetch.py [--n 20000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from private_redis import PrivateRedis
from throughput import BenchRedis, resq_check, resq_cmd, run_timed

SHAPES = ("plain", "priorities", "concurrency", "rate")


def fill(shape: str, n: int) -> None:
    from bench import throughput_app as t

    if shape == "plain":
        t.noop.map(range(n))
    elif shape == "priorities":
        for i in range(n):
            t.noop.apply_async((i,), priority=5 if i % 2 else 0)
    elif shape == "concurrency":
        t.limited.map(range(n))
    else:
        t.rated.map(range(n))


def round_of(server: PrivateRedis, shape: str, n: int) -> tuple[float, float]:
    """(jobs per second including start-up, Redis commands per job)."""
    server.client.flushall()
    fill(shape, n)
    before = server.counters()
    elapsed = run_timed(_cmd(), server.url, timeout=600)
    commands, _ = server.per_job(before, n)
    resq_check(server, n)
    return n / elapsed, commands


def _cmd() -> list[str]:
    cmd = resq_cmd(1, 100)
    cmd[cmd.index("--prefetch") : cmd.index("--prefetch") + 2] = []  # the default: adaptive prefetch
    return cmd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    server = BenchRedis()
    os.environ["RESQ_REDIS_URL"] = server.url
    try:
        from bench import throughput_app

        throughput_app.app.reconfigure(url=server.url)
        found: dict[str, list[tuple[float, float]]] = {shape: [] for shape in SHAPES}
        for run in range(args.runs):
            for shape in SHAPES[run % 4 :] + SHAPES[: run % 4]:  # each shape goes first once in four
                found[shape].append(round_of(server, shape, args.n))
    finally:
        server.close()
    plain = statistics.median(rate for rate, _ in found["plain"])
    print(f"| shape | jobs/s (median of {args.runs}) | vs plain | Redis commands/job |")
    print("| --- | ---: | ---: | ---: |")
    for shape in SHAPES:
        rate = statistics.median(r for r, _ in found[shape])
        commands = statistics.median(c for _, c in found[shape])
        print(f"| {shape} | {rate:,.0f} | {rate / plain:.2f}x | {commands:.1f} |")


if __name__ == "__main__":
    main()
