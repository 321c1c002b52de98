"""The markdown report of the peer benchmark (``bench/results/peers.md``)."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from systems import LOOP, PYTHON_PEERS, RESQ_DEFAULT, System, pins, version_of


@dataclass(frozen=True)
class Column:
    """One figure of the table: its key, heading, format and whether more is better."""

    key: str
    heading: str
    fmt: str
    higher_better: bool


COLUMNS = [
    Column("drain_rate", "drain jobs/s (steady)", "{:,.0f}", True),
    Column("worker_cpu_ms", "worker CPU ms/job", "{:.3f}", False),
    Column("redis_cpu_ms", "Redis CPU ms/job", "{:.3f}", False),
    Column("commands", "Redis commands/job", "{:.1f}", False),
    Column("enqueue_rate", "enqueue jobs/s", "{:,.0f}", True),
    Column("latency_p50", "latency p50 ms", "{:.2f}", False),
    Column("latency_p99", "latency p99 ms", "{:.2f}", False),
    Column("due_p99", "due at once: p99 lateness ms", "{:,.0f}", False),
    Column("memory_per_job", "Redis bytes/queued job", "{:,.0f}", False),
]


def all_drained(results: dict[str, dict[str, Any]]) -> bool:
    """Whether every system ran every job of every drain."""
    return all(r["drained"] >= r["expected"] and r["distinct"] == r["expected"] for r in results.values())


def cell(col: Column, value: float | None, loop: float | None) -> str:
    """A figure with its ratio to the loop."""
    if value is None:
        return "–"
    text = col.fmt.format(value)
    return f"{text} ({value / loop:.2f}×)" if loop else text


def best(col: Column, rows: dict[str, dict[str, Any]], labels: list[str]) -> tuple[str, float] | None:
    """The best (label, value) of ``col`` among ``labels``."""
    found = [(label, rows[label][col.key]) for label in labels if rows[label].get(col.key) is not None]
    if col.key == "due_p99":
        found = [(label, v) for label, v in found if v >= 0]  # a negative p99 is early, not better
    if not found:
        return None
    pick: Callable[..., tuple[str, float]] = max if col.higher_better else min
    return pick(found, key=lambda lv: lv[1])


def ratio_row(title: str, rows: dict[str, dict[str, Any]], labels: list[str], named: bool = True) -> str:
    """A table line: resq -c 1's ratio to the best of ``labels`` in every column (who that is, in brackets)."""
    cells = []
    mine = rows.get(RESQ_DEFAULT, {})
    for col in COLUMNS:
        top = best(col, rows, labels)
        if top is None or mine.get(col.key) is None or not top[1]:
            cells.append("–")
        else:
            who = f" ({top[0].split(' (')[0]})" if named else ""
            cells.append(f"**{mine[col.key] / top[1]:.2f}×**{who}")
    return f"| **{title}** | " + " | ".join(cells) + " |"


def table(rows: dict[str, dict[str, Any]], systems: list[System]) -> list[str]:
    """The main table, each figure with its ratio to the loop, then resq's ratio rows."""
    versions = pins()
    loop = rows.get(LOOP, {})
    lines = ["| system | " + " | ".join(c.heading for c in COLUMNS) + " |", "|---" + "|---:" * len(COLUMNS) + "|"]
    for s in systems:
        name = f"{s.label} {version_of(s, versions)}".strip()
        name = f"**{name}**" if s.label == RESQ_DEFAULT else name
        lines.append(f"| {name} | " + " | ".join(cell(c, rows[s.label].get(c.key), loop.get(c.key)) for c in COLUMNS))
        lines[-1] += " |"
    labels = [s.label for s in systems]
    python_peers = [s.label for s in systems if s.key in PYTHON_PEERS]
    bullmq = [s.label for s in systems if s.key == "bullmq"]
    if RESQ_DEFAULT in rows:
        for title, group in (
            ("resq -c 1 ÷ best Python peer", python_peers),
            ("resq -c 1 ÷ BullMQ (best)", bullmq),
            ("resq -c 1 ÷ loop", [LOOP] if LOOP in labels else []),
        ):
            if group:
                lines.append(ratio_row(title, rows, group, named=len(group) > 1))
    return lines


def moonshot(rows: dict[str, dict[str, Any]]) -> str:
    """The moonshot line: resq -c 1's drain against BullMQ at its best concurrency."""
    col = COLUMNS[0]
    top = best(col, rows, [label for label in rows if label.startswith("BullMQ")])
    mine = rows.get(RESQ_DEFAULT, {}).get("drain_rate")
    if top is None or mine is None:
        return "**Moonshot** (resq -c 1 vs BullMQ at its best concurrency): not measured in this run."
    return (
        f"**Moonshot: resq -c 1 drains {mine:,.0f} jobs/s, BullMQ at its best ({top[0]}) {top[1]:,.0f}: "
        f"{mine / top[1]:.2f}× (goal ≥ 1.00×).**"
    )


def top_commands(rows: dict[str, dict[str, Any]], systems: list[System], k: int = 8) -> list[str]:
    """Per system, the commands per job of the drain window, most frequent first."""
    lines = ["| system | total | top commands per job (drain window, scripts' commands included) |", "|---|---:|---|"]
    for s in systems:
        r = rows[s.label]
        by = sorted(((n, c) for n, c in r["by_command"].items() if c), key=lambda nc: -nc[1])
        shown = ", ".join(f"{name} {count:.2f}" for name, count in (by if s.key == "resq" else by[:k]))
        total = "–" if r["commands"] is None else f"{r['commands']:.1f}"
        lines.append(f"| {s.label} | {total} | {shown} |")
    return lines


def machine(redis_version: str) -> list[str]:
    """Machine and software versions."""
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        "?",
    )
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    v = pins()
    peers = ", ".join(f"{p} {v[p]}" for p in ("huey", "dramatiq", "celery", "rq", "arq", "bullmq"))
    return [
        f"- {dt.date.today().isoformat()}, {platform.machine()}, {os.cpu_count()} CPUs ({cpu}), "
        f"Linux {platform.release()}",
        f"- redis-server {redis_version} (private, loopback TCP, no persistence); Python {platform.python_version()}, "
        f"Node {node}",
        f"- resq {metadata.version('resq')} (redis-py {metadata.version('redis')}, hiredis "
        f"{metadata.version('hiredis')}); peers: {peers} (redis-py {v['redis']} + hiredis {v['hiredis']}; "
        f"arq's venv redis-py 5.3.1; ioredis {v['ioredis']})",
    ]


def render(
    rows: dict[str, dict[str, Any]], systems: list[System], plan: dict[str, Any], redis_version: str, took: float
) -> str:
    """The whole report."""
    head = [
        "# Peer benchmark: resq beside the other job queues on Redis",
        "",
        'Written by `bench/peers/run.py` (`make bench`; see bench/README.md, "Peers"). Do not edit by hand.',
        "",
        *machine(redis_version),
        f"- {plan['n']:,} jobs pre-queued per drain, {plan['repeats']} repeats (interleaved), medians; latency: "
        f"{plan['latency_n']} jobs one at a time (for {plan['latency_s']:.0f} s at most) after {plan['warmup']} "
        f"warm-up; {plan['due_n']:,} jobs due at once; memory over {plan['mem_n']:,} queued jobs; took {took:.0f} s",
        "- job body for every system: one pipelined round trip `HSET bench:start <i> <time>` + `INCR bench:done`"
        " through the system's own client; ONE worker process started, default settings (systems.py lists the"
        " departures), logging to a file",
        "",
        "Each figure is followed by its ratio to the hand-written loop (in brackets). The last lines give resq"
        " -c 1's ratio to the best peer of each column (named). For jobs/s more is better; for CPU, commands,"
        " latency, lateness and memory less is better.",
        "",
    ]
    body = [*table(rows, systems), "", moonshot(rows), "", "## Redis commands per job, by command", ""]
    return "\n".join([*head, *body, *top_commands(rows, systems), "", *notes(rows), ""])


def notes(rows: dict[str, dict[str, Any]]) -> list[str]:
    """Anything that went wrong, and the spread of the drain figures."""
    out = ["## Notes", ""]
    for label, r in rows.items():
        if r["drained"] < r["expected"] or r["distinct"] != r["expected"]:
            out.append(f"- **{label}: drained {r['drained']} of {r['expected']} ({r['distinct']} distinct)**")
        if r.get("due_all_ran") is False:
            out.append(f"- {label}: only {r['due_ran']} of the jobs due at once ran in time")
        if r.get("due_late_enqueue"):
            out.append(f"- {label}: enqueueing the jobs due at once took longer than their lead time")
        if r.get("drain_rate_range"):
            lo, hi = r["drain_rate_range"]
            out.append(f"- {label}: drain jobs/s min–max {lo:,.0f}–{hi:,.0f}")
    return out
