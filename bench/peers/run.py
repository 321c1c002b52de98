#!/usr/bin/env python3
"""Peer benchmark: resq beside huey, dramatiq, celery, rq, arq, BullMQ and a plain loop, on one private Redis.

Run with the project's venv (``.venv/bin/python bench/peers/run.py``; ``make bench`` does). It builds the
peers' own environments first (``envs.py``), starts one private ``redis-server`` (free port, never 6379)
and, for every system in ``systems.py``, with the same job body (one pipelined round trip:
``HSET bench:start <i> <time>`` + ``INCR bench:done``):

- drain: N jobs pre-queued by one producer, one call per job (that fill is timed: enqueue jobs/s), then
  ONE worker started; between the first and the last job done: jobs/s (from the ``bench:start``
  times), worker CPU ms/job (its process tree, ``/proc``), Redis CPU ms/job (``INFO cpu``) and Redis
  commands per job (``INFO commandstats``, commands inside scripts included, the harness's own polls
  taken off). Repeated ``--repeats`` times, rounds interleaved; medians reported;
- latency: a warm idle worker, one job at a time: from the producer's call to the start of the body;
- delayed: M jobs all due at one instant (``--due``), p99 lateness of their start;
- memory: ``INFO memory`` delta over ``--mem-n`` queued jobs, no worker.

Writes ``bench/results/peers.md`` (full run) or nothing (``--smoke``, unless ``--out``). Timing goals live
in the report, never in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PEERS = Path(__file__).resolve().parent
sys.path[:0] = [str(PEERS.parent), str(PEERS)]

import chart  # noqa: E402
import envs  # noqa: E402
import report  # noqa: E402
from harness import Probe, Snapshot, Worker, command_delta, percentile, wait_done  # noqa: E402
from private_redis import PrivateRedis  # noqa: E402
from systems import APPS, SYSTEMS, System  # noqa: E402

RESULTS = PEERS.parent / "results" / "peers.md"
#: Where the docs embed the chart of the last full run.
DOCS_CHART = PEERS.parent.parent / "docs" / "img" / "peers.svg"
T0 = time.monotonic()
MEMORY_PRODUCERS = 3  # the memory figure's jobs are queued by 3 producers at once (only to save time)


def say(text: str) -> None:
    """A progress line, with the seconds since start."""
    print(f"[{time.monotonic() - T0:6.1f} s] {text}", flush=True)


@dataclass(frozen=True)
class Plan:
    """How much of each workload to run."""

    n: int
    repeats: int
    latency_n: int
    latency_s: float
    warmup: int
    due_n: int
    mem_n: int
    smoke: bool


FULL = Plan(n=5000, repeats=3, latency_n=200, latency_s=30.0, warmup=20, due_n=1000, mem_n=100_000, smoke=False)
SMOKE = Plan(n=50, repeats=1, latency_n=5, latency_s=1.0, warmup=2, due_n=20, mem_n=200, smoke=True)


@dataclass
class Bench:
    """The shared state of one run: the server, the probe, the log folder."""

    server: PrivateRedis
    probe: Probe
    logs: Path

    def env(self) -> dict[str, str]:
        """The environment of every worker and producer."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RESQ_", "PYTHON", "VIRTUAL_ENV"))}
        env.update(BENCH_REDIS_URL=self.server.url, RESQ_REDIS_URL=self.server.url, PYTHONPATH=str(APPS))
        return env

    def worker(self, system: System, delayed: bool = False) -> Worker:
        """A worker of ``system`` (not started), logging to the run's log folder."""
        log = self.logs / (re.sub(r"[^A-Za-z0-9]+", "-", system.label).strip("-") + ".log")
        return Worker(system.worker_cmd(self.server.url, delayed), self.env(), system.cwd, log)

    def produce(self, system: System, mode: str, n: int, lead: float = 1.0, timeout: float = 900) -> dict[str, Any]:
        """Run the system's producer in one mode; its JSON answer."""
        return self.produce_many(system, mode, n, 1, lead, timeout)[0]

    def produce_many(
        self, system: System, mode: str, n: int, procs: int, lead: float = 1.0, timeout: float = 900
    ) -> list[dict[str, Any]]:
        """Run ``procs`` producers at once, sharing ``n`` jobs (distinct numbers); their JSON answers."""
        share = -(-n // procs)
        running = [
            subprocess.Popen(
                system.producer_cmd(mode, min(share, n - k * share), lead, k * share),
                cwd=system.cwd,
                env=self.env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for k in range(procs)
        ]
        return [answer(system, mode, proc, timeout) for proc in running]


def answer(system: System, mode: str, proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    """A producer's JSON answer, once it has exited 0."""
    out, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{system.label} producer {mode} exited {proc.returncode}:\n{err[-3000:]}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def steady_rate(starts: dict[int, float]) -> float | None:
    """Jobs/s from the first body start to the last."""
    if len(starts) < 2:
        return None
    span = max(starts.values()) - min(starts.values())
    return (len(starts) - 1) / span if span > 0 else None


def drain(bench: Bench, system: System, n: int) -> dict[str, Any]:
    """One drain of ``n`` pre-queued jobs by one fresh worker."""
    bench.server.client.flushall()
    filled = bench.produce(system, "fill", n)
    worker = bench.worker(system).start()
    try:
        wait_done(bench.probe, worker, 1, timeout=120, poll_s=0.002)
        first = Snapshot.take(bench.probe, worker.pid)
        wait_done(bench.probe, worker, n, timeout=max(120.0, n / 20), poll_s=0.02)
        last = Snapshot.take(bench.probe, worker.pid)
    finally:
        worker.stop()
    if last.done < n:
        print(f"{system.label} drained {last.done} of {n}; its log:\n{worker.log.read_text()[-3000:]}", file=sys.stderr)
    return window(bench, first, last, n) | {"enqueue_rate": n / filled["elapsed"]}


def window(bench: Bench, first: Snapshot, last: Snapshot, n: int) -> dict[str, Any]:
    """The figures of a drain between its first and last snapshots."""
    starts = bench.probe.starts()
    jobs = last.done - first.done
    by_command = command_delta(first, last)
    per_job = (lambda x: x / jobs) if jobs > 0 else (lambda x: None)
    return {
        "drained": last.done,
        "distinct": len(starts),
        "expected": n,
        "drain_rate": steady_rate(starts),
        "worker_cpu_ms": per_job((last.worker_cpu - first.worker_cpu) * 1000),
        "redis_cpu_ms": per_job((last.redis_cpu - first.redis_cpu) * 1000),
        "commands": per_job(sum(by_command.values())),
        "by_command": {name: per_job(count) for name, count in by_command.items()},
    }


def latency(bench: Bench, system: System, plan: Plan) -> dict[str, Any]:
    """p50/p99 from enqueue call to body start, with a warm idle worker; then the delayed workload."""
    worker = bench.worker(system).start()
    try:
        bench.probe.reset_body()
        sent = bench.produce(system, "latency", plan.warmup + plan.latency_n, plan.latency_s)["sent"]
        starts = bench.probe.starts()
        lat = [(starts[int(i)] - t) * 1000 for i, t in sent.items() if int(i) >= plan.warmup and int(i) in starts]
        if system.delayed_worker is not None:
            worker.stop()
            worker = bench.worker(system, delayed=True).start()
        p50, p99 = (percentile(lat, 0.5), percentile(lat, 0.99)) if lat else (None, None)
        result = {"latency_p50": p50, "latency_p99": p99, "latency_n": len(lat)}
        return result | delayed(bench, system, worker, plan)
    finally:
        worker.stop()


def delayed(bench: Bench, system: System, worker: Worker, plan: Plan) -> dict[str, Any]:
    """``plan.due_n`` jobs due at one instant: lateness p50/p99/max of their starts (ms)."""
    bench.probe.reset_body()
    lead = 1.0 if plan.smoke else 3.0
    out = bench.produce(system, "delayed", plan.due_n, lead)
    ran = wait_done(bench.probe, worker, plan.due_n, timeout=lead + (30 if plan.smoke else 240), poll_s=0.02)
    late = [(t - out["due"]) * 1000 for t in bench.probe.starts().values()]
    return {
        "due_all_ran": ran,
        "due_ran": len(late),
        "due_late_enqueue": out["late_enqueue"],
        "due_p50": percentile(late, 0.5) if ran else None,
        "due_p99": percentile(late, 0.99) if ran else None,
        "due_max": max(late) if ran else None,
    }


def memory(bench: Bench, system: System, n: int) -> dict[str, Any]:
    """Bytes of ``used_memory`` per queued job over ``n`` jobs (queued by a few producers), no worker running."""
    bench.server.client.flushall()
    before = bench.probe.used_memory()
    bench.produce_many(system, "fill", n, MEMORY_PRODUCERS, timeout=1800)
    per_job = (bench.probe.used_memory() - before) / n
    bench.server.client.flushall()
    return {"memory_per_job": per_job}


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of every numeric figure over the repeats (the by-command table too)."""
    out: dict[str, Any] = {"drained": min(r["drained"] for r in runs), "expected": runs[0]["expected"]}
    out["distinct"] = min(r["distinct"] for r in runs)
    for key in ("drain_rate", "worker_cpu_ms", "redis_cpu_ms", "commands", "enqueue_rate"):
        values = [r[key] for r in runs if r[key] is not None]
        out[key] = statistics.median(values) if values else None
        out[key + "_range"] = (min(values), max(values)) if values else None
    names = {name for r in runs for name in r["by_command"]}
    out["by_command"] = {
        name: statistics.median([r["by_command"].get(name) or 0.0 for r in runs]) for name in sorted(names)
    }
    return out


def measure(bench: Bench, systems: list[System], plan: Plan) -> dict[str, dict[str, Any]]:
    """Every workload for every system; figures by label."""
    drains: dict[str, list[dict[str, Any]]] = {s.label: [] for s in systems}
    for round_no in range(plan.repeats):
        for system in systems:
            say(f"drain {round_no + 1}/{plan.repeats}: {system.label}")
            drains[system.label].append(drain(bench, system, plan.n))
    results = {label: median_of(runs) for label, runs in drains.items()}
    for system in systems:
        say(f"latency + delayed: {system.label}")
        bench.server.client.flushall()
        results[system.label] |= latency(bench, system, plan)
    measured: dict[str, dict[str, Any]] = {}
    for system in systems:
        if system.key not in measured:
            say(f"memory: {system.key}")
            measured[system.key] = memory(bench, system, plan.mem_n)
        results[system.label] |= measured[system.key]
    return results


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="few jobs, 1 repeat, writes nothing unless --out")
    ap.add_argument("--out", type=Path, help=f"the report (default: {RESULTS} unless --smoke)")
    ap.add_argument("--json", type=Path, help="also write the raw figures as JSON")
    ap.add_argument("--only", help="comma-separated system keys (loop,huey,dramatiq,celery,rq,arq,bullmq,resq)")
    ap.add_argument("--n", type=int, help="jobs per drain")
    ap.add_argument("--repeats", type=int, help="drains per system")
    ap.add_argument("--mem-n", type=int, help="queued jobs for the memory figure")
    return ap.parse_args(argv)


def plan_of(args: argparse.Namespace) -> Plan:
    """The plan: full or smoke, with any override."""
    plan = SMOKE if args.smoke else FULL
    overrides = {"n": args.n, "repeats": args.repeats, "mem_n": args.mem_n}
    return Plan(**(plan.__dict__ | {k: v for k, v in overrides.items() if v is not None}))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 if every system drained all its jobs."""
    args = parse(argv)
    plan = plan_of(args)
    t0 = time.monotonic()
    envs.ensure_all()
    systems = [s for s in SYSTEMS if not args.only or s.key in args.only.split(",")]
    server = PrivateRedis()
    try:
        with tempfile.TemporaryDirectory(prefix="resq-peers-") as logs:
            bench = Bench(server, Probe(server.client), Path(logs))
            results = measure(bench, systems, plan)
        text = report.render(results, systems, plan.__dict__, server.version(), time.monotonic() - t0)
    finally:
        server.close()
    print(text)
    out = args.out or (None if plan.smoke else RESULTS)
    if out is not None:
        out.write_text(text)
        print(f"written: {out}, {chart.draw(out, out.with_suffix('.svg'))}")
        if out == RESULTS:  # the docs show the latest chart (the docs site cannot link outside docs/)
            shutil.copyfile(out.with_suffix(".svg"), DOCS_CHART)
    if args.json is not None:
        args.json.write_text(json.dumps({"results": results, "report": text}, indent=1, default=str))
    return 0 if report.all_drained(results) else 1


if __name__ == "__main__":
    sys.exit(main())
