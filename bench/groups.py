#!/usr/bin/env python3
"""Benchmark: fair queuing between groups (``apply_async(group=...)``, ``docs/flow-control.md``).

One queue holds one group of ``--big`` jobs (100,000 by default), enqueued first, then ``--groups``
groups of ``--small`` jobs each (100 of 10). One resq worker process drains it; each job records its
label as it starts. The issue's goals, checked here (never in tests):

1. every job of the small groups starts before the big group's 2,000th job;
2. the drain rate is within 20 % of the same jobs in an ungrouped queue, run side by side.

Starts a private, throw-away ``redis-server`` (free port, no persistence; never 6379).

Usage:  .venv/bin/python bench/groups.py [--big 100000] [--groups 100] [--small 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from throughput import BenchRedis, resq_check, run_timed

WORKER = [sys.executable, "-m", "resq", "worker", "-A", "bench.throughput_app:app", "--burst", "--log-level", "warning"]


def fill(big: int, groups: int, small: int, grouped: bool) -> None:
    from bench.throughput_app import mark

    def one(label: str, group: str) -> None:
        mark.apply_async((label,), group=group if grouped else None)

    for n in range(big):
        one(f"big:{n}", "big")
    for g in range(groups):
        for n in range(small):
            one(f"g{g}:{n}", f"tenant-{g}")


def drain(server: BenchRedis, big: int, groups: int, small: int, grouped: bool) -> tuple[float, list[str]]:
    server.client.flushall()
    began = time.perf_counter()
    fill(big, groups, small, grouped)
    filled = time.perf_counter() - began
    elapsed = run_timed(WORKER, server.url, timeout=1800)
    resq_check(server, big + groups * small)
    order = [label.decode() for label in server.client.lrange("bench:order", 0, -1)]
    print(
        f"  {'grouped' if grouped else 'ungrouped'}: enqueued in {filled:.1f} s, drained in {elapsed:.1f} s", flush=True
    )
    return (big + groups * small) / elapsed, order


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--small", type=int, default=10)
    args = parser.parse_args()
    server = BenchRedis()
    os.environ["RESQ_REDIS_URL"] = server.url
    try:
        from bench import throughput_app

        throughput_app.app.reconfigure(url=server.url)
        plain_rate, _ = drain(server, args.big, args.groups, args.small, grouped=False)
        rate, order = drain(server, args.big, args.groups, args.small, grouped=True)
    finally:
        server.close()
    big_starts = [i for i, label in enumerate(order) if label.startswith("big:")]
    last_small = max(i for i, label in enumerate(order) if not label.startswith("big:"))
    big_before = sum(1 for i in big_starts if i < last_small)
    print("| queue | jobs | jobs/s | vs ungrouped |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| ungrouped | {len(order):,} | {plain_rate:,.0f} | 1.00x |")
    shape = f"{args.groups} groups of {args.small} + one of {args.big:,}"
    print(f"| {shape} | {len(order):,} | {rate:,.0f} | {rate / plain_rate:.2f}x |")
    print(f"\nthe last small group's job started as job {last_small + 1:,}, after {big_before:,} of the big group's")
    print(f"goal 1 (all before the big group's 2,000th): {'met' if big_before < 2000 else 'NOT met'}")
    print(f"goal 2 (within 20 % of ungrouped): {'met' if rate >= 0.8 * plain_rate else 'NOT met'}")


if __name__ == "__main__":
    main()
