#!/usr/bin/env python3
"""Benchmark: what the workflow bookkeeping costs (``docs/workflows.md``).

The same ``--n`` no-op jobs (20,000 by default) drained by one resq worker process (``-c 1``), side by
side in one run: as plain jobs (``task.map``), as the members of one chord (their ends settle the chord's
join, the last releases its callback), and as the jobs of one batch. Reports jobs/s and Redis commands
per job of each, and checks that the chord's callback ran once with every result.

Starts a private, throw-away ``redis-server`` (free port, no persistence; never 6379).

Usage:  .venv/bin/python bench/workflows.py [--n 20000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from throughput import BenchRedis, run_timed

WORKER = [
    sys.executable, "-m", "resq", "worker", "-A", "bench.throughput_app:app", "-c", "1", "--burst",
    "--log-level", "warning",
]  # fmt: skip


def fill(kind: str, n: int) -> object:
    import resq
    from bench.throughput_app import app, noop, total

    if kind == "plain":
        return noop.map(range(n))
    if kind == "chord":
        return resq.chord((noop.s(i) for i in range(n)), total.s()).delay()
    with app.batch(on_complete=noop.si(-1)) as batch:
        noop.map(range(n))
    return batch


def drain(server: BenchRedis, kind: str, n: int) -> tuple[float, float]:
    server.client.flushall()
    began = time.perf_counter()
    made = fill(kind, n)
    filled = time.perf_counter() - began
    before = server.counters()
    elapsed = run_timed(WORKER, server.url, timeout=1800)
    commands, _ = server.per_job(before, n)
    if kind == "chord":
        assert made.result(timeout=10) == n * (n - 1) // 2, "the chord's callback did not sum every result"  # type: ignore[attr-defined]
    if kind == "batch":
        status = made.status()  # type: ignore[attr-defined]
        assert status is not None and status.succeeded == n and status.fired == ("complete",), status
    print(f"  {kind}: enqueued in {filled:.1f} s, drained in {elapsed:.1f} s", flush=True)
    return n / elapsed, commands


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    args = parser.parse_args()
    server = BenchRedis()
    os.environ["RESQ_REDIS_URL"] = server.url
    try:
        from bench import throughput_app

        throughput_app.app.reconfigure(url=server.url)
        drain(server, "plain", min(args.n, 2000))  # a warm-up: the first drain of a run is slower
        rows = {kind: drain(server, kind, args.n) for kind in ("plain", "chord", "batch")}
    finally:
        server.close()
    base = rows["plain"][0]
    print("| jobs as | jobs | jobs/s | vs plain | Redis commands / job |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for kind, (rate, commands) in rows.items():
        print(f"| {kind} | {args.n:,} | {rate:,.0f} | {rate / base:.2f}x | {commands:.1f} |")


if __name__ == "__main__":
    main()
