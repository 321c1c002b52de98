"""Measuring tools of the peer benchmark: a worker process tree's CPU, Redis's counters, processes.

Worker CPU is read from ``/proc/<pid>/stat`` (``utime + stime`` of every process in the worker's tree, plus
``cutime + cstime``, the CPU of children it has already reaped) at the two ends of the measured window.
``os.wait4``/``resource.getrusage(RUSAGE_CHILDREN)`` would give only a whole life's total at exit,
start-up and imports included, and only for processes that their parent reaped; sampling ``/proc`` lets
the window start at the first job done and end at the last, and counts threads and forked children alike.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import redis

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, CPU ticks: utime + stime + cutime + cstime) of ``pid``, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "; fields[0] is the state
    return int(fields[1]), sum(int(f) for f in fields[11:15])


def tree_cpu_s(root: int) -> float:
    """CPU seconds used so far by ``root`` and all its descendants (alive ones, plus what they reaped)."""
    stats: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            stats[int(entry)] = st
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += stats.get(pid, (0, 0))[1]
        todo.extend(children.get(pid, []))
    return total / TICK


@dataclass
class Probe:
    """The harness's own client; it counts the commands it sends so they can be taken off the server's."""

    client: redis.Redis
    sent: dict[str, int] = field(default_factory=dict)

    def _count(self, name: str) -> None:
        self.sent[name] = self.sent.get(name, 0) + 1

    def done(self) -> int:
        """``bench:done``: jobs whose body ran."""
        self._count("get")
        return int(self.client.get("bench:done") or 0)

    def info(self, section: str) -> dict[str, object]:
        """``INFO section``."""
        self._count("info")
        return dict(self.client.info(section))

    def commands(self) -> dict[str, int]:
        """Calls per command name so far (``INFO commandstats``; commands run by scripts included)."""
        stats = self.info("commandstats")
        return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items() if isinstance(v, dict)}

    def redis_cpu_s(self) -> float:
        """The server's CPU seconds so far (user + system)."""
        cpu = self.info("cpu")
        return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])  # type: ignore[arg-type]

    def used_memory(self) -> int:
        """``used_memory`` in bytes."""
        return int(self.info("memory")["used_memory"])  # type: ignore[call-overload]

    def reset_body(self) -> None:
        """Forget the body's records (the worker's own keys stay)."""
        self.client.delete("bench:start", "bench:done")

    def starts(self) -> dict[int, float]:
        """Job index → when its body started."""
        return {int(k): float(v) for k, v in self.client.hgetall("bench:start").items()}


@dataclass
class Snapshot:
    """Counters at one instant: wall clock, worker tree CPU, jobs done, Redis CPU and command calls."""

    t: float
    worker_cpu: float
    done: int
    redis_cpu: float
    commands: dict[str, int]
    sent: dict[str, int]

    @classmethod
    def take(cls, probe: Probe, root: int) -> Snapshot:
        """Read every counter now (the probe's own calls up to here recorded with it)."""
        t, cpu, done = time.time(), tree_cpu_s(root), probe.done()
        redis_cpu, commands = probe.redis_cpu_s(), probe.commands()
        return cls(t, cpu, done, redis_cpu, commands, dict(probe.sent))


def command_delta(a: Snapshot, b: Snapshot) -> dict[str, int]:
    """Commands the server ran between two snapshots, less those the probe itself sent in between."""
    delta = {name: b.commands.get(name, 0) - a.commands.get(name, 0) for name in b.commands}
    for name in b.sent:
        delta[name] = delta.get(name, 0) - (b.sent[name] - a.sent.get(name, 0))
    return {name: n for name, n in delta.items() if n > 0}


@dataclass
class Worker:
    """A worker started in its own session (so its whole tree can be stopped), logging to a file."""

    cmd: list[str]
    env: dict[str, str]
    cwd: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    _log_file: IO[bytes] | None = None

    def start(self) -> Worker:
        """Start it."""
        self._log_file = self.log.open("ab")
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=self.cwd,
            env=self.env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    @property
    def pid(self) -> int:
        """The worker's (root) process id."""
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        """Whether it is still running."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """TERM its process group, then KILL what is left after 15 s."""
        if self.proc is None:
            return
        for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        if self._log_file is not None:
            self._log_file.close()
        self.proc = None


def wait_done(probe: Probe, worker: Worker, target: int, timeout: float, poll_s: float) -> bool:
    """Poll ``bench:done`` until it reaches ``target``; False on timeout or if the worker died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe.done() >= target:
            return True
        if not worker.alive():
            return False
        time.sleep(poll_s)
    return False


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(q * len(ordered)))) - 1]
