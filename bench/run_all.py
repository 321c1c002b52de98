"""Run every benchmark in this folder, one after the other (``make bench``), and time them.

Each benchmark starts its own private redis-server on a free port and writes its figures to
``bench/results/``. Timing goals live here, never in tests: the whole run should take under 20 minutes.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["queue_primitive.py", "scheduler_lateness.py", "throughput.py", "capacity.py", "peers/run.py"]
BENCHMARKS.append("dashboard.py")  # the dashboard at 100,000 queued and 10,000 dead jobs
BENCHMARKS.append("resque.py")  # a Resque queue drained by node-resque and by resq
BUDGET_S = 20 * 60


def run(name: str) -> tuple[bool, float]:
    """Run one benchmark; (succeeded, seconds taken)."""
    print(f"== {name}", flush=True)
    t0 = time.monotonic()
    ok = subprocess.call([sys.executable, str(HERE / name)], cwd=HERE.parent) == 0
    return ok, time.monotonic() - t0


def main() -> int:
    failed, took = 0, {}
    for name in BENCHMARKS:
        if not (HERE / name).exists():
            print(f"skip {name}: not present")
            continue
        ok, took[name] = run(name)
        failed += not ok
    total = sum(took.values())
    for name, seconds in took.items():
        print(f"{name}: {seconds:.0f} s")
    print(f"all benchmarks: {total:.0f} s (budget {BUDGET_S} s){'' if total <= BUDGET_S else ': OVER BUDGET'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
