"""Scaling: Redis memory per queued and per finished job, and drain rate with 1, 2 and 3 Redis masters.

1. Memory: ``--n`` no-op jobs (``noop(i)``) enqueued on a private Redis, then drained; ``used_memory``
   before, with the jobs queued, and with their finished records kept (``result_ttl``).
2. Masters: the same jobs spread over 1, 2 and 3 private Redis servers (one queue each: queues are the
   unit a Redis Cluster spreads over its masters, every queue's keys in one slot), one ``resq worker -c 1``
   per server, all draining at once. On a machine with few cores the workers and servers share them, so
   the total stops growing where the cores run out: the table says how many this machine has.

Writes ``bench/results/scaling.md`` (read by ``docs/scaling.md``). Never touches port 6379.

Usage:  .venv/bin/python bench/scaling.py [--n 50000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from capacity import APP, redis_cpu
from private_redis import PrivateRedis

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"


def env_for(server: PrivateRedis, app_dir: str) -> dict[str, str]:
    return dict(os.environ, RESQ_REDIS_URL=server.url, PYTHONPATH=os.pathsep.join([app_dir, str(ROOT)]))


def fill(server: PrivateRedis, app_dir: str, n: int) -> None:
    program = "import capacity_app as a; a.noop.map(range(%d))" % n  # noqa: UP031 - a one-line program
    subprocess.run([sys.executable, "-c", program], env=env_for(server, app_dir), check=True, cwd=app_dir)


def worker(server: PrivateRedis, app_dir: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "resq", "worker", "-A", "capacity_app:app", "-c", "1", "--burst"]
    return subprocess.Popen(
        cmd, env=env_for(server, app_dir), cwd=app_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def memory(app_dir: str, n: int) -> tuple[float, float]:
    """Bytes of Redis memory per queued job and per finished job (its record, kept ``result_ttl``)."""
    server = PrivateRedis()
    try:
        base = int(server.client.info("memory")["used_memory"])
        fill(server, app_dir, n)
        queued = int(server.client.info("memory")["used_memory"])
        worker(server, app_dir).wait()
        finished = int(server.client.info("memory")["used_memory"])
    finally:
        server.close()
    return (queued - base) / n, (finished - base) / n


def masters(app_dir: str, count: int, n: int) -> tuple[float, float]:
    """Jobs/s of ``count`` servers with ``n // count`` jobs each, drained at once; Redis CPU ms per job."""
    servers = [PrivateRedis() for _ in range(count)]
    try:
        for server in servers:
            fill(server, app_dir, n // count)
        cpu0 = sum(redis_cpu(s) for s in servers)
        began = time.perf_counter()
        for proc in [worker(server, app_dir) for server in servers]:
            proc.wait()
        wall = time.perf_counter() - began
        cpu = sum(redis_cpu(s) for s in servers) - cpu0
    finally:
        for server in servers:
            server.close()
    return (n // count) * count / wall, 1000 * cpu / n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000, help="jobs per run")
    parser.add_argument("--out", type=Path, default=RESULTS / "scaling.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="resq-scaling-") as app_dir:
        Path(app_dir, "capacity_app.py").write_text(APP)
        queued, finished = memory(app_dir, args.n)
        print(f"memory: {queued:.0f} B per queued job, {finished:.0f} B per finished job", flush=True)
        rows = []
        for count in (1, 2, 3):
            rate, cpu_ms = masters(app_dir, count, args.n)
            rows.append(f"| {count} | {count} | {rate:,.0f} | {cpu_ms:.3f} |")
            print(rows[-1], flush=True)
    lines = [
        "# Scaling: memory per job, and 1, 2 and 3 masters",
        "",
        f"Written by `bench/scaling.py` (`--n {args.n}`), {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} CPUs. No-op jobs `noop(i)`, pre-queued; the workers' start-up included.",
        "",
        "| Redis memory | bytes per job |",
        "|---|---:|",
        f"| a queued job (stream entry with its envelope, job hash) | {queued:,.0f} |",
        f"| a finished job (its record and result, kept `result_ttl`) | {finished:,.0f} |",
        "",
        "| masters | workers (`-c 1` each) | jobs/s, all together | Redis CPU ms per job |",
        "|---:|---:|---:|---:|",
        *rows,
        "",
    ]
    args.out.write_text("\n".join(lines))
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
