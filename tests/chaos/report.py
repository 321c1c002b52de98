"""Turn the figures of chaos runs (``RESQ_CHAOS_RESULTS=path``, one JSON line per scenario) into the
markdown table of docs/reliability.md::

    RESQ_CHAOS=full RESQ_CHAOS_RESULTS=/tmp/chaos.jsonl make chaos
    .venv/bin/python -m tests.chaos.report /tmp/chaos.jsonl

The last line of each scenario (and mode) wins, so a file may collect several runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HEADER = (
    "| fault | jobs in | completed | re-runs | lost | time to recover | wall |\n"
    "| --- | ---: | ---: | ---: | ---: | --- | ---: |"
)


#: The order of the rows: the issue's list of faults, then the recovery bound and the load.
ORDER = (
    "test_worker_kills.py",
    "test_redis_restart.py",
    "test_snapshot_restore.py",
    "test_freeze.py",
    "test_network_cut.py",
    "test_scheduler_kills.py",
    "test_gil.py",
    "test_recovery_bound.py",
    "test_load.py",
)


def _rank(row: dict[str, Any]) -> tuple[int, str, str]:
    name = row["scenario"].split("::")[0].rsplit("/", 1)[-1]
    return (ORDER.index(name) if name in ORDER else len(ORDER), row["scenario"], row["mode"])


def rows(lines: list[str]) -> list[dict[str, Any]]:
    """The last figures of each (scenario, mode), in the order of :data:`ORDER`."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for line in lines:
        line = line.strip()
        if line:
            row = json.loads(line)
            found[(row["scenario"], row["mode"])] = row
    return sorted(found.values(), key=_rank)


def _recover(row: dict[str, Any]) -> str:
    if row["recover_s"] is None:
        return "—"
    return f"{row['recover_s']:.2f} s ({row['recover']})"


def table(found: list[dict[str, Any]]) -> str:
    """The results table, then the command that reproduces each row."""
    lines = [HEADER]
    for n, row in enumerate(found, 1):
        mode = "" if row["mode"] == "full" else " *(short)*"
        lines.append(
            f"| {n}. {row['fault']}{mode} | {row['jobs_in']:,} | {row['completed']:,} | {row['reruns']:,} "
            f"| {row['lost']:,} | {_recover(row)} | {row['wall_s']:.1f} s |"
        )
    lines += ["", "Reproduce a row:", ""]
    lines += [f"{n}. `{row['command']}`" for n, row in enumerate(found, 1)]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    print(table(rows(Path(argv[0]).read_text(encoding="utf-8").splitlines())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
