#!/usr/bin/env python3
"""Benchmark: how late do delayed jobs start? (from their due time to the start of the task)

Starts a private, throw-away ``redis-server`` (free port, temp dir, no persistence; never 6379), one
``resq scheduler`` and one ``resq worker -c C`` as subprocesses, then:

1. burst: N jobs (default 10,000; half ``enqueue_in``, half ``enqueue_at``) all due at the same instant;
   reports lateness p50 / p99 / max, how long the last job waited, and any job that started early;
2. single: S jobs (default 200) each alone at its instant (due times 50 ms apart); p50 / p99 / max.

Lateness is ``started_at - due`` as seen by the task (``time.time()`` in the worker), so it includes
promotion by the scheduler (or by the worker's own promotion, whichever comes first), the stream
delivery and the worker's start of the job.

Usage:  .venv/bin/python bench/scheduler_lateness.py [--n 10000] [--single 200] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

import lateness_app  # noqa: E402  (needs the path above)
from private_redis import PrivateRedis  # noqa: E402

from resq.codec import unpack  # noqa: E402


def spawn(url: str, *args: str) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(BENCH)]), RESQ_REDIS_URL=url, RESQ_LOG_LEVEL="WARNING"
    )
    return subprocess.Popen(
        [sys.executable, "-m", "resq", *args, "-A", "lateness_app:app"],
        env=env,
        cwd=str(BENCH),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def wait_records(client: redis.Redis, n: int, timeout: float) -> list[list[float]]:
    deadline = time.monotonic() + timeout
    while client.llen(lateness_app.KEY) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {client.llen(lateness_app.KEY)} of {n} jobs ran")
        time.sleep(0.05)
    rows = [unpack(raw) for raw in client.lrange(lateness_app.KEY, 0, -1)]
    client.delete(lateness_app.KEY)
    return rows


def time_to_promote(client: redis.Redis, due: float) -> float:
    """Milliseconds from ``due`` until the scheduled set is empty (polled every millisecond)."""
    time.sleep(max(0.0, due - time.time() - 0.05))
    key = "{resq:default}:scheduled"
    while client.zcard(key):
        time.sleep(0.001)
    return (time.time() - due) * 1000


def burst(client: redis.Redis, n: int) -> dict[str, float]:
    record = lateness_app.record
    lead = 3.0 + n / 2000  # time to enqueue them all before they are due
    due = time.time() + lead
    when = dt.datetime.fromtimestamp(due, dt.UTC)
    t0 = time.perf_counter()
    for i in range(n):
        if i % 2:
            record.enqueue_at(when, due)
        else:
            record.enqueue_in(due - time.time(), due)
    enqueue_s = time.perf_counter() - t0
    if time.time() >= due:
        raise RuntimeError("enqueueing took longer than the lead time: lower --n")
    promoted_ms = time_to_promote(client, due)
    rows = wait_records(client, n, timeout=lead + 120)
    late = [(started - d) * 1000 for started, d in rows]
    return {
        "n": n,
        "enqueue_s": enqueue_s,
        "promoted_ms": promoted_ms,
        "p50": percentile(late, 50),
        "p99": percentile(late, 99),
        "max": max(late),
        "min": min(late),
        "early": sum(1 for x in late if x < 0),
    }


def single(client: redis.Redis, n: int) -> dict[str, float]:
    record = lateness_app.record
    base = time.time() + 1.0
    for i in range(n):
        due = base + i * 0.05
        record.enqueue_at(dt.datetime.fromtimestamp(due, dt.UTC), due)
    rows = wait_records(client, n, timeout=n * 0.05 + 60)
    late = [(started - d) * 1000 for started, d in rows]
    return {
        "n": n,
        "p50": percentile(late, 50),
        "p99": percentile(late, 99),
        "max": max(late),
        "min": min(late),
        "early": sum(1 for x in late if x < 0),
    }


def report(args: argparse.Namespace, version: str, b: dict[str, float], s: dict[str, float]) -> str:
    return f"""# Scheduler lateness benchmark

- date: {dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()}
- machine: {platform.machine()}, nproc={os.cpu_count()}, {platform.platform()}
- python {platform.python_version()}, redis-server {version} (private instance, no persistence, loopback TCP)
- processes: 1 `resq scheduler`, 1 `resq worker -c {args.concurrency}` (which also promotes its queue),
  the producer; all on the same host. Lateness = task start (`time.time()` in the worker) - due time.

## {int(b["n"]):,} jobs due at the same instant (half `enqueue_in`, half `enqueue_at`)

| p50 | p99 | max | min | started early |
| ---: | ---: | ---: | ---: | ---: |
| {b["p50"]:.1f} ms | {b["p99"]:.1f} ms | {b["max"]:.1f} ms | {b["min"]:.1f} ms | {int(b["early"])} |

All {int(b["n"]):,} were moved into the queue {b["promoted_ms"]:.0f} ms after their due time (scheduled set
polled every ms; promotion moves 1,000 ids per Lua script). The rest of the spread is the worker draining
the queue: the max is about N / the throughput of one worker with {args.concurrency} processes. Enqueueing
them took {b["enqueue_s"]:.1f} s (one round trip per job).

## Single jobs ({int(s["n"])} jobs, due 50 ms apart, each alone at its instant)

| p50 | p99 | max | min | started early |
| ---: | ---: | ---: | ---: | ---: |
| {s["p50"]:.1f} ms | {s["p99"]:.1f} ms | {s["max"]:.1f} ms | {s["min"]:.1f} ms | {int(s["early"])} |

Command: `.venv/bin/python bench/scheduler_lateness.py --n {int(b["n"])} --single {int(s["n"])} \
--concurrency {args.concurrency}`
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="jobs due at the same instant")
    parser.add_argument("--single", type=int, default=200, help="single jobs")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes")
    parser.add_argument("--out", default=str(BENCH / "results" / "scheduler_lateness.md"))
    args = parser.parse_args()
    server = PrivateRedis()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        lateness_app.app.reconfigure(url=server.url)
        procs.append(spawn(server.url, "worker", "-c", str(args.concurrency)))
        procs.append(spawn(server.url, "scheduler"))
        deadline = time.monotonic() + 30
        while server.client.zcard("{resq}:workers") < args.concurrency and time.monotonic() < deadline:
            time.sleep(0.05)
        s = single(server.client, args.single)
        print("single:", s)
        b = burst(server.client, args.n)
        print("burst:", b)
        text = report(args, server.client.info("server")["redis_version"], b, s)
        Path(args.out).write_text(text, encoding="utf-8")
        print(text)
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.wait(30)
        server.close()


if __name__ == "__main__":
    main()
