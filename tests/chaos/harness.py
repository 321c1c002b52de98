"""The chaos suite's harness: real ``resq worker``/``resq scheduler`` processes, a producer that remembers
when each job was acknowledged, a monkey, a ledger of runs kept outside the Redis under test, a checker,
and the figures each scenario reports.

Sizes follow ``RESQ_CHAOS``: unset, every scenario is short (a few hundred jobs, faults of a few seconds,
small heartbeat intervals), for ``make test``; ``RESQ_CHAOS=full`` gives the issue's sizes (``make chaos``).
``RESQ_CHAOS_RESULTS=path`` appends each scenario's figures to ``path`` as a JSON line, which
``python -m tests.chaos.report path`` turns into the table of docs/reliability.md.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis

from resq import Resq
from resq.producer import Call, enqueue_many
from tests.apps.chaos import LAST, LEDGER_ENV, RUNS, STARTS
from tests.conftest import REPO_ROOT, spawn_resq

__all__ = [
    "APP",
    "CHAOS",
    "FULL",
    "MODE",
    "TIMED",
    "Ledger",
    "Monkey",
    "Proc",
    "Procs",
    "Producer",
    "Row",
    "Tally",
    "children",
    "size",
    "tally",
    "wait_done",
]

#: ``short`` (the default, in ``make test``) or ``full`` (``RESQ_CHAOS=full``, ``make chaos``).
MODE = "full" if os.environ.get("RESQ_CHAOS", "").strip().lower() == "full" else "short"
FULL = MODE == "full"
APP = "tests.apps.chaos:app"
TIMED = "tests.apps.chaos:timed"
T = TypeVar("T")
H = TypeVar("H", "Producer", "Monkey")


def size(short: T, full: T) -> T:
    """``short`` in the default mode, ``full`` with ``RESQ_CHAOS=full``."""
    return full if FULL else short


def heartbeat_args(interval: float | None) -> list[str]:
    """The worker's ``--heartbeat-interval`` flag, or nothing for the default (3 s)."""
    return [] if interval is None else ["--heartbeat-interval", str(interval)]


# -- processes ----------------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process from ``/proc``, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (a scan of ``/proc``)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None and stat[1] == pid and stat[0] not in ("Z", "X"):
                found.append(int(entry))
    return sorted(found)


@dataclass
class Proc:
    """One ``python -m resq …`` process, the leader of its own process group."""

    popen: subprocess.Popen[bytes]
    log_path: Path
    kind: str

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def running(self) -> bool:
        return self.popen.poll() is None

    def children(self) -> list[int]:
        return children(self.pid) if self.running() else []


class Procs:
    """Starts ``resq worker`` and ``resq scheduler`` processes, each in its own process group (so a
    SIGKILL of a supervisor leaves its children findable), and stops every group at :meth:`close`."""

    STOP_GRACE_S = 10.0

    def __init__(self, log_dir: Path, ledger_url: str) -> None:
        self.log_dir = log_dir
        self.ledger_url = ledger_url
        self.all: list[Proc] = []
        self._count = 0
        self._lock = threading.Lock()
        self._closed = False
        self._threads: list[Producer | Monkey] = []

    def start(self, command: str, *args: str, url: str, app_ref: str = APP, env: dict[str, str] | None = None) -> Proc:
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), full_env.get("PYTHONPATH")) if p)
        full_env.update(
            {
                "PYTHONUNBUFFERED": "1",
                "RESQ_REDIS_URL": url,
                "RESQ_APP": app_ref,
                LEDGER_ENV: self.ledger_url,
                "RESQ_LOG_FORMAT": "console",
            }
        )
        full_env.update(env or {})
        with self._lock:
            if self._closed:  # a monkey thread that outlived its test must not leave a process behind
                raise RuntimeError("the processes of this test were stopped already")
            self._count += 1
            log_path = self.log_dir / f"{command}-{self._count}.log"
            proc = Proc(spawn_resq(command, args, full_env, log_path), log_path, command)
            self.all.append(proc)
        return proc

    def worker(self, url: str, *args: str, app_ref: str = APP, env: dict[str, str] | None = None) -> Proc:
        return self.start("worker", "--no-banner", "--grace-period", "5", *args, url=url, app_ref=app_ref, env=env)

    def ready_workers(self, url: str, count: int, heartbeat: float | None) -> tuple[list[Proc], dict[int, list[int]]]:
        """``count`` workers ``-c 2`` with this heartbeat interval (None: the default), started and ready;
        returns them and each one's children's pids."""
        workers = [self.worker(url, "-c", "2", *heartbeat_args(heartbeat)) for _ in range(count)]
        return workers, {w.pid: self.wait_ready(w, 2) for w in workers}

    def scheduler(self, url: str, *args: str, app_ref: str = TIMED, env: dict[str, str] | None = None) -> Proc:
        return self.start("scheduler", *args, url=url, app_ref=app_ref, env=env)

    def wait_ready(self, proc: Proc, concurrency: int, timeout: float = 30.0) -> list[int]:
        """Wait until a worker logged its start and forked its children; returns their pids."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            kids = proc.children()
            if len(kids) >= concurrency and proc.log().count("child_started") >= concurrency:
                return kids
            if not proc.running():
                break
            time.sleep(0.05)
        raise AssertionError(f"worker {proc.pid} not ready:\n{proc.log()[-3000:]}")

    @property
    def workers(self) -> list[Proc]:
        return [p for p in self.all if p.kind == "worker"]

    def track(self, thread: H) -> H:
        """Halt this producer or monkey at :meth:`close` (when its test failed before stopping it)."""
        self._threads.append(thread)
        return thread

    def close(self) -> None:
        for thread in self._threads:
            thread.halt()
        with self._lock:
            self._closed = True
            procs = list(self.all)
        for proc in procs:
            _killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.STOP_GRACE_S
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
        for proc in procs:
            _killpg(proc.pid, signal.SIGKILL)  # the group: children that outlived their supervisor too
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=5)


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def sigkill(pid: int) -> bool:
    """SIGKILL one process by pid; False if it was already gone."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


def sigkill_group(proc: Proc) -> None:
    """SIGKILL a worker's whole process group (supervisor and children at once: a machine that died)."""
    _killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.popen.wait(timeout=5)


# -- the ledger -----------------------------------------------------------------------------------------


class Ledger:
    """The runs the tasks of ``tests.apps.chaos`` counted, on a Redis that no fault touches."""

    def __init__(self, url: str) -> None:
        self.url = url
        #: a plain client (replies as bytes), typed loosely like the replies of redis-py
        self.client: Any = redis.Redis.from_url(url)

    def runs(self) -> dict[str, int]:
        """Job id -> completed runs."""
        return {k.decode(): int(v) for k, v in self.client.hgetall(RUNS).items()}

    def runs_of(self, ids: Sequence[str]) -> list[int]:
        found: list[int] = []
        for chunk in _chunks(ids, 5000):
            found += [int(v or 0) for v in self.client.hmget(RUNS, chunk)]
        return found

    def last(self) -> dict[str, tuple[float, int]]:
        """Job id -> (time, pid) of its latest completed run."""
        found: dict[str, tuple[float, int]] = {}
        for key, value in self.client.hgetall(LAST).items():
            at, pid = value.decode().split()
            found[key.decode()] = (float(at), int(pid))
        return found

    def starts(self) -> list[tuple[str, int, float, int]]:
        """(job id, attempt, time, pid) of each run of ``chaos.long`` begun, in order."""
        found = []
        for raw in self.client.lrange(STARTS, 0, -1):
            job_id, attempt, at, pid = raw.decode().split()
            found.append((job_id, int(attempt), float(at), int(pid)))
        return found

    def completions(self, pids: Iterable[int] | None = None) -> list[float]:
        """The sorted times of the latest run of each job (of those pids only, if given)."""
        wanted = None if pids is None else set(pids)
        return sorted(at for at, pid in self.last().values() if wanted is None or pid in wanted)

    def close(self) -> None:
        self.client.close()


def first_after(times: Sequence[float], moment: float) -> float | None:
    """Seconds from ``moment`` to the first of ``times`` after it (None: none after it)."""
    later = [t for t in times if t > moment]
    return min(later) - moment if later else None


def longest_pause(times: Sequence[float], start: float, end: float) -> float:
    """The longest interval without a completion between ``start`` and ``end``."""
    inside = [start, *(t for t in times if start < t < end), end]
    return max(b - a for a, b in itertools.pairwise(inside))


# -- the producer ---------------------------------------------------------------------------------------


class Producer(threading.Thread):
    """Enqueues ``total`` jobs of ``task`` in chunks (one round trip each), at ``rate`` jobs per second (or
    as fast as it can), and keeps ``(job id, time acknowledged)`` of each. A chunk that raises (Redis away
    longer than ``broker_retry_s``) is not acknowledged; the producer waits a little and goes on, as an
    application would."""

    def __init__(
        self,
        url: str,
        total: int,
        *,
        rate: float | None = None,
        chunk: int = 50,
        ms: float = 0.0,
        task: str = "chaos.record",
        make_args: Callable[[int], tuple[Any, ...]] | None = None,
        queue: str = "default",
        due_ms: Callable[[int], int] | None = None,
    ) -> None:
        super().__init__(name="chaos-producer", daemon=True)
        self.app = Resq(url)
        self.total, self.rate, self.chunk, self.queue = total, rate, chunk, queue
        self.task = task
        self.make_args = make_args or (lambda i: (i, ms))
        self.due_ms = due_ms
        self.acked: list[tuple[str, float]] = []
        self.errors: list[tuple[float, str]] = []
        self.started_at = 0.0
        self.finished_at = 0.0
        self._halt = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        self.started_at = time.time()
        begun, number = time.monotonic(), 0
        try:
            while number < self.total and not self._halt.is_set():
                n = min(self.chunk, self.total - number)
                if self.rate:
                    wait = begun + number / self.rate - time.monotonic()
                    if wait > 0 and self._halt.wait(wait):
                        break
                calls = [
                    Call(self.task, self.make_args(i), None, self.queue, self.due_ms(i) if self.due_ms else 0)
                    for i in range(number, number + n)
                ]
                try:
                    jobs = enqueue_many(self.app, calls)
                except Exception as exc:  # BrokerUnavailable after broker_retry_s, a refusal while loading, ...
                    self.errors.append((time.time(), f"{type(exc).__name__}: {exc}"))
                    self._halt.wait(0.1)
                    continue
                now = time.time()
                with self._lock:
                    self.acked += [(job.id, now) for job in jobs]
                number += n
        finally:
            self.finished_at = time.time()
            self.app.broker.close()

    def stop(self) -> None:
        self._halt.set()

    halt = stop

    def ids(self, where: Callable[[float], bool] = lambda t: True) -> list[str]:
        """Ids of the jobs acknowledged at a time for which ``where`` holds."""
        with self._lock:
            return [job_id for job_id, at in self.acked if where(at)]

    def count(self) -> int:
        with self._lock:
            return len(self.acked)

    def wait_for_count(self, n: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.count() < n:
            if time.monotonic() > deadline or not self.is_alive():
                raise AssertionError(f"producer acknowledged {self.count()} of {n} jobs; errors: {self.errors[-3:]}")
            time.sleep(0.01)


# -- the monkey -----------------------------------------------------------------------------------------


class Monkey(threading.Thread):
    """Calls ``act(n)`` every ``period`` seconds (the first after one period) until stopped or ``times`` acts;
    each act returns what it did, kept in :attr:`events` as ``(time, what)``."""

    def __init__(self, period: float, act: Callable[[int], str], times: int | None = None) -> None:
        super().__init__(name="chaos-monkey", daemon=True)
        self.period, self.act, self.times = period, act, times
        self.events: list[tuple[float, str]] = []
        self.error: BaseException | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        n = 0
        try:
            while not self._halt.wait(self.period) and (self.times is None or n < self.times):
                self.events.append((time.time(), self.act(n)))
                n += 1
        except BaseException as exc:  # reported by the test
            self.error = exc

    def halt(self) -> None:
        self._halt.set()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=30)
        if self.error is not None:
            raise AssertionError(f"the monkey failed: {self.error!r}") from self.error


def rng() -> tuple[random.Random, int]:
    """A seeded random generator (``RESQ_CHAOS_SEED`` to replay a run) and its seed."""
    seed = int(os.environ.get("RESQ_CHAOS_SEED") or random.SystemRandom().randrange(1 << 30))
    return random.Random(seed), seed


# -- the checker ----------------------------------------------------------------------------------------


@dataclass
class Done:
    """What :func:`wait_done` found: ids not completed (never finished, or dead), and the time it took."""

    missing: dict[str, str]
    waited_s: float
    finished_at: float


def wait_done(
    app: Resq,
    ledger: Ledger,
    ids: Iterable[str],
    timeout: float,
    *,
    queue: str = "default",
    expired_ok: bool = False,
) -> Done:
    """Wait until every job of ``ids`` completed: the ledger counts a run, and resq records it
    ``succeeded`` (with ``expired_ok``, a record already expired counts too: the load scenario's short
    ``result_ttl``). A job that ends ``dead`` or ``cancelled`` is missing at once. Returns the missing ones
    with their status."""
    remaining, final = set(ids), {}
    began = time.monotonic()
    deadline = began + timeout
    while remaining:
        for chunk in _chunks(sorted(remaining), 2000):
            runs = ledger.client.hmget(RUNS, chunk)
            ran = [job_id for job_id, count in zip(chunk, runs, strict=True) if count]
            if not ran:
                continue
            try:
                rows = app.broker.jobs.summaries([(queue, job_id) for job_id in ran], ["status"])
            except Exception:  # Redis still restarting: not yet
                continue
            for job_id, (status,) in zip(ran, rows, strict=True):
                if status == b"succeeded" or (status is None and expired_ok):
                    remaining.discard(job_id)
                elif status in (b"dead", b"cancelled"):
                    final[job_id] = status.decode()
                    remaining.discard(job_id)
        if not remaining or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    missing = dict(final)
    if remaining:
        statuses = _statuses(app, queue, sorted(remaining))
        missing.update(statuses)
    return Done(missing, time.monotonic() - began, time.time())


def _statuses(app: Resq, queue: str, ids: list[str]) -> dict[str, str]:
    try:
        rows = app.broker.jobs.summaries([(queue, job_id) for job_id in ids], ["status"])
    except Exception as exc:
        return dict.fromkeys(ids, f"? ({exc!r})")
    return {job_id: (status.decode() if status else "no record") for job_id, (status,) in zip(ids, rows, strict=True)}


def statuses(app: Resq, ids: Sequence[str], queue: str = "default") -> dict[str, str]:
    """Each job's status now (``no record`` for an unknown one), in round trips of 2,000."""
    found: dict[str, str] = {}
    for chunk in _chunks(list(ids), 2000):
        found.update(_statuses(app, queue, chunk))
    return found


def _chunks(items: Sequence[T], n: int) -> Iterator[list[T]]:
    for i in range(0, len(items), n):
        yield list(items[i : i + n])


@dataclass
class Tally:
    """Completed runs of a set of jobs, from the ledger."""

    jobs: int
    completed: int
    reruns: int


def tally(ledger: Ledger, ids: Sequence[str], missing: Iterable[str] = ()) -> Tally:
    """How many of ``ids`` completed (not in ``missing``), and how many runs beyond one each took."""
    counts = ledger.runs_of(ids)
    gone = set(missing)
    return Tally(len(ids), len(ids) - len(gone & set(ids)), sum(max(0, c - 1) for c in counts))


# -- figures --------------------------------------------------------------------------------------------


@dataclass
class Row:
    """One scenario's figures: a row of the table in docs/reliability.md."""

    scenario: str
    fault: str
    jobs_in: int
    completed: int
    reruns: int
    lost: int
    recover_s: float | None
    recover: str
    wall_s: float
    mode: str = MODE
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def command(self) -> str:
        return f"RESQ_CHAOS=full .venv/bin/pytest -m chaos {self.scenario}"


def write_row(row: Row) -> None:
    """Print the figures; with ``RESQ_CHAOS_RESULTS=path``, append them to ``path`` as a JSON line."""
    if row.recover_s is not None:
        row.recover_s = round(row.recover_s, 2)
    line = json.dumps({**asdict(row), "command": row.command}, default=str)
    print(f"chaos figures: {line}")
    path = os.environ.get("RESQ_CHAOS_RESULTS")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(line + "\n")


#: The marks of every chaos scenario: ``chaos``, and a time limit that fits the mode.
CHAOS = [pytest.mark.chaos, pytest.mark.timeout(size(150, 1800))]


def assert_not_taken_for_lost_writes(logs: str) -> None:
    """An outage is not a loss of writes: after a Redis freeze or a network cut longer than a worker
    record's TTL (3 heartbeat intervals + 1 s) the record is gone (expired, or pruned by a reaper) and its
    ``beats`` count starts again at 1, which the supervisor must not take for Redis having lost writes
    (``redis_lost_writes``: it would give back leases its live children hold, and jobs would run twice)."""
    assert "redis_lost_writes" not in logs
