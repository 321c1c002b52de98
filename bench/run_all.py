"""Run every benchmark in this folder, one after the other (``make bench``).

Each benchmark starts its own private redis-server on a free port and writes its figures to
``bench/results/``. Timing goals live here, never in tests.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["queue_primitive.py", "scheduler_lateness.py", "throughput.py"]


def main() -> int:
    failed = 0
    for name in BENCHMARKS:
        path = HERE / name
        if not path.exists():
            print(f"skip {name}: not present")
            continue
        print(f"== {name}", flush=True)
        failed += subprocess.call([sys.executable, str(path)], cwd=HERE.parent) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
