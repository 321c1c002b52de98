"""Capacity: how many resq jobs/s one Redis core sustains, measured with one and several worker processes.

Each run pre-queues N no-op jobs on a private Redis, starts W ``resq worker -c C --burst`` processes and
reads Redis's own CPU time (``INFO cpu``) over the drain: Redis CPU per job, and what that makes per
Redis core-second. Writes ``bench/results/capacity.md``. The figures come from a Redis that is not
saturated (on 2 cores the workers saturate first); per-job Redis CPU is what the capacity model uses.
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

from private_redis import PrivateRedis

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
APP = "from resq import Resq\napp = Resq()\n\n\n@app.task(name='noop')\ndef noop(i):\n    pass\n"
#: (worker processes, children each)
SHAPES = [(1, 1), (1, 2), (2, 2)]


def redis_cpu(server: PrivateRedis) -> float:
    """Redis's CPU time so far, in seconds (user + system)."""
    info = server.client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def run(server: PrivateRedis, app_dir: str, workers: int, children: int, n: int) -> dict[str, float]:
    """Drain ``n`` jobs with ``workers`` × ``-c children``; jobs/s, Redis busy share and CPU per job."""
    env = dict(os.environ, RESQ_REDIS_URL=server.url, PYTHONPATH=os.pathsep.join([app_dir, str(ROOT)]))
    fill = "import capacity_app as a; a.noop.map(range(%d))" % n  # noqa: UP031 - a one-line program
    subprocess.run([sys.executable, "-c", fill], env=env, check=True, cwd=app_dir)
    cmd = [sys.executable, "-m", "resq", "worker", "-A", "capacity_app:app", "-c", str(children), "--burst"]
    cpu0, t0 = redis_cpu(server), time.perf_counter()
    procs = [
        subprocess.Popen(cmd, env=env, cwd=app_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(workers)
    ]
    for proc in procs:
        proc.wait()
    wall, cpu = time.perf_counter() - t0, redis_cpu(server) - cpu0
    return {"rate": n / wall, "busy": cpu / wall, "cpu_ms": 1000 * cpu / n, "per_core": n / cpu}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40_000, help="jobs per run")
    parser.add_argument("--out", type=Path, default=RESULTS / "capacity.md")
    args = parser.parse_args()
    server = PrivateRedis()
    lines = []
    try:
        with tempfile.TemporaryDirectory(prefix="resq-capacity-") as app_dir:
            Path(app_dir, "capacity_app.py").write_text(APP)
            for workers, children in SHAPES:
                r = run(server, app_dir, workers, children, args.n)
                lines.append(
                    f"| {workers} × `-c {children}` | {r['rate']:,.0f} | {100 * r['busy']:.0f}% | "
                    f"{r['cpu_ms']:.3f} | {r['per_core']:,.0f} |"
                )
                print(lines[-1])
    finally:
        server.close()
    head = [
        "# Capacity: resq jobs per Redis core",
        "",
        f"Written by `bench/capacity.py` (`--n {args.n}`), {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} CPUs. No-op jobs, pre-queued; start-up of the workers included.",
        "",
        "| workers | jobs/s | Redis busy (of one core) | Redis CPU ms/job | jobs per Redis core-second |",
        "|---|---:|---:|---:|---:|",
    ]
    args.out.write_text("\n".join([*head, *lines, ""]))
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
