"""The systems of the peer benchmark: how each one's worker and producer are started, and its version.

Every worker runs at its defaults, one worker process started (its own threads or child processes
allowed), logging to a file. Departures from a bare default, each one because the workload needs it:
dramatiq ``--processes 1`` (one process; its default is one per CPU); rq ``-w SimpleWorker`` (no fork per
job) and, for delayed jobs only, ``--with-scheduler``; BullMQ keeps the last 1,000 completed jobs
(``removeOnComplete``), as in the issue's run.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

PEERS = Path(__file__).resolve().parent
BENCH = PEERS.parent
ROOT = BENCH.parent
APPS = PEERS / "apps"
NODE_DIR = PEERS / "bullmq"
PYTHONS = {"peers": BENCH / ".peers-venv" / "bin" / "python", "arq": BENCH / ".peers-venv-arq" / "bin" / "python"}
PYTHONS["resq"] = Path(sys.executable)


@dataclass(frozen=True)
class System:
    """One row of the table.

    Attributes:
        label: the row's name.
        key: the system (``<key>_app`` in ``apps/``, or ``bullmq``); memory is measured once per key.
        runtime: ``peers``, ``arq`` or ``resq`` (which Python runs it), or ``node``.
        worker: the worker's command after the interpreter (a script of the venv's ``bin`` if it starts with
            ``bin/``).
        delayed_worker: a different command for the delayed workload, if it needs one.
    """

    label: str
    key: str
    runtime: str
    worker: tuple[str, ...]
    delayed_worker: tuple[str, ...] | None = None

    @property
    def cwd(self) -> Path:
        """Where its processes start."""
        return NODE_DIR if self.runtime == "node" else APPS

    def _command(self, args: tuple[str, ...]) -> list[str]:
        if self.runtime == "node":
            return ["node", *args]
        python = PYTHONS[self.runtime]
        if args[0].startswith("bin/"):
            return [str(python.parent / args[0].removeprefix("bin/")), *args[1:]]
        return [str(python), *args]

    def worker_cmd(self, url: str, delayed: bool = False) -> list[str]:
        """The worker's command line (``{url}`` filled in)."""
        args = self.delayed_worker if delayed and self.delayed_worker else self.worker
        return [a.replace("{url}", url) for a in self._command(args)]

    def producer_cmd(self, mode: str, n: int, lead: float = 1.0, first: int = 0) -> list[str]:
        """The producer's command line for one mode (jobs numbered from ``first``)."""
        args = [mode, str(n), str(lead), str(first)]
        if self.runtime == "node":
            return ["node", "producer.js", *args]
        return [str(PYTHONS[self.runtime]), "producer.py", self.key, *args]


RQ = ("bin/rq", "worker", "-w", "rq.worker.SimpleWorker", "-u", "{url}")
RESQ = ("-m", "resq", "worker", "-A", "resq_app:app")
SYSTEMS = [
    System("hand-written LPUSH/BRPOP loop", "loop", "peers", ("loop_app.py",)),
    System("huey (1 thread)", "huey", "peers", ("bin/huey_consumer", "huey_app.huey")),
    System(
        "dramatiq (1 process, 8 threads)", "dramatiq", "peers", ("bin/dramatiq", "dramatiq_app", "--processes", "1")
    ),
    System("celery (solo)", "celery", "peers", ("bin/celery", "-A", "celery_app", "worker", "-P", "solo")),
    System("rq SimpleWorker", "rq", "peers", RQ, (*RQ, "--with-scheduler")),
    System("arq (defaults)", "arq", "arq", ("bin/arq", "arq_app.WorkerSettings")),
    System("BullMQ concurrency 1", "bullmq", "node", ("worker.js", "1")),
    System("BullMQ concurrency 50", "bullmq", "node", ("worker.js", "50")),
    System("resq -c 1 (defaults)", "resq", "resq", (*RESQ, "-c", "1")),
    System("resq -c 2", "resq", "resq", (*RESQ, "-c", "2")),
]
LOOP, RESQ_DEFAULT = SYSTEMS[0].label, SYSTEMS[8].label
PYTHON_PEERS = {"huey", "dramatiq", "celery", "rq", "arq"}


def pins() -> dict[str, str]:
    """Package → pinned version, from the requirements files and package.json."""
    found: dict[str, str] = {}
    for req in (PEERS / "requirements.txt", PEERS / "requirements-arq.txt"):
        for line in req.read_text().splitlines():
            if m := re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line):
                found.setdefault(m.group(1).lower(), m.group(2))
    deps = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]
    found.update({name: version for name, version in deps.items()})
    return found


def version_of(system: System, versions: dict[str, str]) -> str:
    """The version shown for a system."""
    return versions.get(system.key, "")
