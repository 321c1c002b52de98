"""The supervisor: forks N children, heartbeats for them, promotes due jobs, reaps dead workers' leases,
enforces hard time limits, and turns the operator's signals into a polite (or immediate) stop.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import signal
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from multiprocessing import connection
from multiprocessing.connection import Connection
from types import FrameType

from resq.app import Resq
from resq.clock import now_ms, to_ms
from resq.errors import BrokerError, BrokerUnavailable, ConfigError
from resq.failures import TimeLimitExceeded
from resq.log import get_logger
from resq.maintenance import BROKEN_KEY_HINT, Maintenance, command_refused, set_aside
from resq.outcomes import Delivery
from resq.worker.board import Board, Running
from resq.worker.child import EXIT_RECYCLE, ChildConfig, run_child
from resq.worker.control import RemoteControl
from resq.worker.resque import BUSY_TICK_S, ResqueQueues

__all__ = ["SCHEDULER_GROUP", "Supervisor", "WorkerConfig", "embedded_scheduler"]

log = get_logger("resq.worker")

#: A job Redis shows started less than this long (ms) before the supervisor read its child's board may be
#: one the child began meanwhile (its board shows a job microseconds after its start): lost writes leave
#: such a lease alone.
JUST_STARTED_MS = 200
#: Longest sleep of the supervisor's loop, in seconds (bounds how late a due job is promoted).
TICK_S = 0.25
#: A child that dies within this many seconds of its start counts as crashing on start.
QUICK_CRASH_S = 2.0
#: Longest pause before replacing children that keep crashing on start, in seconds.
MAX_RESPAWN_DELAY_S = 10.0
#: Seconds past a task's hard timeout before the supervisor kills a child that did not stop it itself.
KILL_MARGIN_S = 2.0
#: How often one part of the upkeep logs that a key of resq's holds the wrong type, at most, in seconds.
BROKEN_LOG_EVERY_S = 30.0
#: The entry-point group naming the scheduler ``resq worker --scheduler`` embeds (``resq_scheduler``'s):
#: a callable ``(app) -> pass``, where ``pass()`` runs a scheduler pass if due and returns the seconds
#: until the next one is.
SCHEDULER_GROUP = "resq.scheduler"
#: The signals that stop a worker.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)


class _StopSignal(BaseException):
    """Raised by the signal handler into a wait on Redis that a stop may cut short (the start-up wait, the
    maintenance calls), so that a worker whose Redis is away or unresponsive still stops at once."""


@dataclass(frozen=True)
class WorkerConfig:
    """Options of ``resq worker``."""

    queues: list[str] = field(default_factory=lambda: ["default"])
    concurrency: int = 1
    threads: int = 1
    #: leases per fetch (None: adaptive, see ``Consumer``)
    prefetch: int | None = None
    burst: bool = False
    grace_period_s: float = 30.0
    max_jobs_per_child: int | None = None
    max_memory_per_child_mb: int | None = None
    #: serve Prometheus metrics on this port (None: no metrics endpoint)
    metrics_port: int | None = None
    #: run a scheduler in the supervisor (``--scheduler``, found through :data:`SCHEDULER_GROUP`)
    scheduler: bool = False
    #: Resque-family queues whose jobs the supervisor makes resq jobs of (``--resque-queues``), and their
    #: namespace (None: ``resque``)
    resque_queues: list[str] = field(default_factory=list)
    resque_namespace: str | None = None


def embedded_scheduler(app: Resq) -> Callable[[], float]:
    """The scheduler pass of ``--scheduler``, found through the :data:`SCHEDULER_GROUP` entry point.

    Raises:
        ConfigError: no scheduler package is installed, or a periodic entry names an unknown task.
    """
    for entry_point in entry_points(group=SCHEDULER_GROUP):
        try:
            factory = entry_point.load()
        except ImportError as exc:
            raise ConfigError(f"--scheduler: the scheduler package cannot be imported ({exc})") from exc
        embedded: Callable[[], float] = factory(app)
        return embedded
    raise ConfigError(
        "--scheduler needs the scheduler package (resq_scheduler), which is not installed; "
        "reinstall resq, or run the scheduler elsewhere"
    )


@dataclass
class _Running:
    """A job a child's board shows running, and its hard limit once looked up."""

    job: Running
    limit: float | None = None
    looked_up: bool = False


@dataclass
class _ChildProc:
    pid: int
    worker_id: str
    #: the child's end of this pipe closes when it exits (which wakes the supervisor at once)
    reader: Connection
    board: Board
    #: what the registry shows of it (host, pid, supervisor, queues, started), written with each heartbeat
    info: dict[str, str] = field(default_factory=dict)
    started: float = 0.0
    #: board row -> the job running on that thread
    running: dict[int, _Running] = field(default_factory=dict)
    #: the ``current`` jobs last written to the worker registry for this child
    shown: str = ""
    #: its heartbeats as Redis last counted them (0: not known yet); fewer later means Redis lost writes
    beats: int = 0

    def look(self) -> None:
        """Read the child's board (what each thread runs now), keeping what is known of unchanged rows."""
        board = self.board.read()
        old = self.running
        self.running = {
            row: old[row] if row in old and old[row].job.seq == job.seq else _Running(job) for row, job in board.items()
        }

    def current(self) -> str:
        """The ids of the jobs it runs, comma-separated, as the registry shows them."""
        return ",".join(sorted(str(r.job.delivery.job_id) for r in self.running.values()))


class Supervisor:
    """Runs ``resq worker``.

    Args:
        app: the app whose tasks the children run.
        config: queues, concurrency and limits.
    """

    def __init__(self, app: Resq, config: WorkerConfig) -> None:
        self.app = app
        self.config = config
        self.broker = app.broker
        self.host = socket.gethostname()
        self.supervisor_id = f"{self.host}:{os.getpid()}:{secrets.token_hex(3)}"
        self.children: dict[int, _ChildProc] = {}
        self.maintenance = Maintenance(app, config.queues)
        self.control = RemoteControl(app, now_ms())
        #: the embedded scheduler's pass (``--scheduler``), and when it is next due (monotonic)
        self._scheduler = embedded_scheduler(app) if config.scheduler else None
        self._scheduler_at = 0.0
        #: the Resque queues served (``--resque-queues``), or None
        self.resque = (
            ResqueQueues.for_worker(app, config.resque_queues, config.resque_namespace, self.host, os.getpid())
            if config.resque_queues
            else None
        )
        #: the shortest hard limit of any registered task (None: no task has one)
        self._shortest_timeout = min((t.options.timeout for t in app.tasks.values() if t.options.timeout), default=None)
        self._stop_requests = 0
        self._grace_deadline: float | None = None
        #: Redis did not answer the upkeep (an outage, a failover): once it answers again, the children's
        #: leases are reconciled, since a fetch whose reply was lost leaves a lease no child knows of
        self._redis_was_away = False
        self._pending_signals: list[int] = []
        #: True while the main thread waits on Redis in a place a stop signal may interrupt
        self._interruptible = False
        self._last_heartbeat = 0.0
        #: when ``current`` was last written to the registry (monotonic)
        self._shown_at = 0.0
        #: ids of children whose leases were not yet given back (given back when the supervisor stops)
        self._unreleased: set[str] = set()
        #: when children that crashed as they started are to be replaced (monotonic)
        self._respawn_at: list[float] = []
        self._crash_backoff_s = 0.0
        #: part of the upkeep -> when it last logged a key of the wrong type (monotonic)
        self._broken_logged: dict[str, float] = {}

    # -- lifecycle --------------------------------------------------------------------------------

    def run(self) -> int:
        """Supervise until stopped; returns the process exit status."""
        self._install_signals()
        self.app.hooks.load_entry_points()
        if not self._wait_until_ready():
            log.info("worker_stopped", worker=self.supervisor_id, reason="stopped while waiting for Redis")
            return 0
        if self.config.metrics_port is not None:
            from resq.ops.metrics import serve

            serve(self.app, self.config.metrics_port)
        self.app.hooks.run("worker_start", self)
        log.info(
            "worker_started",
            worker=self.supervisor_id,
            url=self.broker.connection.safe_url(),
            namespace=self.app.settings.namespace,
            queues=self.config.queues,
            concurrency=self.config.concurrency,
            threads=self.config.threads,
            prefetch=self.config.prefetch,
            scheduler=self.config.scheduler,
            pid=os.getpid(),
        )
        for _ in range(self.config.concurrency):
            self._spawn()
        while self.children or self._respawn_at:
            self._tick()
        self._finish()
        return 0

    def _wait_until_ready(self) -> bool:
        """Create the queues' groups and run due maintenance, waiting for Redis as long as it takes.

        Returns False when a stop signal came first (the worker then exits 0 without starting).
        """
        delay = 0.1
        try:
            with self._stop_may_interrupt():
                while not self._stop_pending():
                    try:
                        self._step("start", self._first_maintenance)
                        return True
                    except BrokerUnavailable as exc:
                        log.warning("redis_unavailable", error=str(exc), retry_in_s=delay)
                        time.sleep(delay)
                        delay = min(delay * 2, 5.0)
        except _StopSignal:
            pass
        self._handle_signals()
        return False

    def _finish(self) -> None:
        try:
            self.maintenance.release_consumers(sorted(self._unreleased), "returned")
            self.broker.workers.unregister(sorted(self._unreleased))
            if self.resque is not None:
                self.resque.stop()
        except BrokerUnavailable as exc:
            log.warning("redis_unavailable", error=str(exc), during="shutdown")
        self.app.hooks.run("worker_stop", self)
        log.info("worker_stopped", worker=self.supervisor_id)

    # -- children ---------------------------------------------------------------------------------

    def _spawn(self) -> None:
        worker_id = f"{self.host}:{os.getpid()}:{secrets.token_hex(4)}"
        reader, writer = connection.Pipe(duplex=False)
        board = Board(self.config.threads)
        info = {
            "host": self.host,
            "pid": "0",
            "supervisor": self.supervisor_id,
            "queues": ",".join(self.config.queues),
            "started_ms": str(now_ms()),
            "current": "",
        }
        pid = os.fork()
        if pid == 0:  # the child: it writes nothing to the pipe; its end closes when it exits
            reader.close()
            os._exit(self._child_main(worker_id, board, info))
        writer.close()
        child = _ChildProc(pid, worker_id, reader, board, {**info, "pid": str(pid)}, started=time.monotonic())
        self.children[pid] = child
        self._unreleased.add(worker_id)
        log.info("child_started", child_pid=pid, worker=worker_id)

    def _child_main(self, worker_id: str, board: Board, info: dict[str, str]) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGCONT):
            signal.signal(sig, signal.SIG_DFL)
        try:
            self.app.broker.reset_after_fork()
            try:
                self.app.broker.workers.register(worker_id, {**info, "pid": str(os.getpid())})
            except BrokerError as exc:  # the registry's keys are broken: run anyway (the supervisor says so)
                if not command_refused(exc):
                    raise
                log.error("register_failed", worker=worker_id, error=str(exc), hint=BROKEN_KEY_HINT)
            cfg = self.config
            child_cfg = ChildConfig(
                worker_id,
                cfg.queues,
                cfg.threads,
                cfg.prefetch,
                cfg.burst,
                cfg.max_jobs_per_child,
                cfg.max_memory_per_child_mb,
            )
            return run_child(self.app, child_cfg, board)
        except SystemExit as exc:
            return int(exc.code or 0)
        except BaseException as exc:
            log.error("child_crashed", error=repr(exc), exc_info=True)
            return 1

    def _tick(self) -> None:
        """One pass of the loop: messages, exits, signals, time limits, maintenance."""
        timeout = min(TICK_S, self.maintenance.seconds_until_due())
        if self.resque is not None and self.resque.busy:
            timeout = min(timeout, BUSY_TICK_S)
        if self._scheduler is not None:
            timeout = min(timeout, self._scheduler_at - time.monotonic())
        connection.wait([c.reader for c in self.children.values()], timeout=max(timeout, 0.0))
        for child in self.children.values():
            child.look()
        self._handle_signals()
        self._reap_children()
        if self._stop_requests:
            self._respawn_at.clear()
        else:
            self._respawn_due()
        try:
            self._enforce_time_limits()
        except BrokerUnavailable as exc:
            log.warning("redis_unavailable", error=str(exc), during="time limits")
        if self._grace_deadline is not None and time.monotonic() > self._grace_deadline:
            log.warning("grace_period_over", children=len(self.children))
            self._kill_children()
        if not self._stop_requests:
            try:
                self._maintain()
            except BrokerUnavailable as exc:
                self._redis_was_away = True
                log.warning("redis_unavailable", error=str(exc))
            except _StopSignal:
                self._handle_signals()  # a stop cut a call to an unresponsive Redis short

    def _first_maintenance(self) -> None:
        self.broker.queues.ensure_groups(self.config.queues)
        self.maintenance.run_due(force=True)
        if self.resque is not None:
            self.resque.start()
            while self.config.burst and self.resque.step(everything=True):  # --burst: what waits, before children look
                pass

    def _step(self, name: str, action: Callable[[], object]) -> None:
        """Run one part of the upkeep; a key of the wrong type in it is logged (at most every
        ``BROKEN_LOG_EVERY_S`` per part) and does not stop the others, nor the supervisor."""
        try:
            action()
        except BrokerError as exc:
            if not command_refused(exc):
                raise
            if set_aside(self.app, exc):
                return
            now = time.monotonic()
            if now - self._broken_logged.get(name, -BROKEN_LOG_EVERY_S) >= BROKEN_LOG_EVERY_S:
                self._broken_logged[name] = now
                log.error("maintenance_failed", step=name, error=str(exc), hint=BROKEN_KEY_HINT)

    def _maintain(self) -> None:
        """Promotion, reaping, heartbeats and remote commands (every command here may hit Redis)."""
        child_ids = [c.worker_id for c in self.children.values()]
        commands: list[str] = []
        with self._stop_may_interrupt():
            self._step("promote and reap", lambda: self.maintenance.run_due(extra_live=child_ids))
            beat = self._heartbeat_due()
            if beat:
                self._step("heartbeat", self._heartbeat)
            self._step("current jobs", self._show_current)
            if self.resque is not None:
                self._step("resque queues", self.resque.step)
                if beat:
                    self._step("resque heartbeat", self.resque.heartbeat)
            self._step("remote commands", lambda: commands.extend(self._poll(child_ids, beat)))
            if self._scheduler is not None:
                self._scheduler_at = time.monotonic() + self._scheduler()
        for command in commands:
            log.info("remote_command", command=command)
            if command == "stop":
                self._stop(signal.SIGTERM)
            else:
                self._forward(signal.SIGUSR2 if command == "pause" else signal.SIGCONT)

    def _heartbeat(self) -> None:
        children = {c.worker_id: c for c in self.children.values()}
        beats = self.broker.workers.heartbeat({w: {**c.info, "current": c.shown} for w, c in children.items()})
        back, self._redis_was_away = self._redis_was_away, False
        for worker_id, count in beats.items():
            child = children[worker_id]
            rewound = count <= child.beats  # Redis counts no more beats than it did
            child.beats = count
            if rewound or back:
                why = "lost writes" if rewound else "redis back"
                self._step(f"leases after {why}", functools.partial(self._reconcile, child, count, rewound))

    def _reconcile(self, child: _ChildProc, count: int, rewound: bool = True) -> None:
        """Redis lost writes (it came back from an older snapshot, say; ``count`` is the heartbeats it now
        counts, 1 when it forgot the child altogether, as it does too once the child was declared dead and
        its leases reaped), or it answers again after an outage (``rewound`` False: a failover, a cut, in
        which a fetch's reply may have been lost after Redis leased its entries): the leases it holds for
        ``child`` may not be the child's. Give back every lease of the child that it does not run now, so
        that none waits for ever under a live worker that will never look at it again (a job it finished
        after the snapshot runs again: at-least-once). The child's outcome for a job it still runs is
        recorded as usual, or refused if Redis no longer has it leased to the child (fencing)."""
        looked_ms = now_ms()
        child.look()
        running = {(r.job.delivery.entry, r.job.delivery.front) for r in child.running.values()}
        released = 0
        for queue in self.config.queues:
            held = [
                d for d in self.broker.queues.pending_of(queue, child.worker_id) if (d.entry, d.front) not in running
            ]
            for delivery in self._not_just_started(held, looked_ms):
                if self.broker.queues.release(delivery, "returned") != "gone":
                    released += 1
        if not rewound:  # back after an outage: leases of fetches whose replies were lost
            if released:
                log.warning("leases_reconciled", worker=child.worker_id, leases_given_back=released)
        elif count > 1:  # an older count: Redis lost writes
            log.warning("redis_lost_writes", worker=child.worker_id, leases_given_back=released)
        else:  # no count at all: the worker was declared dead meanwhile (cut off, paused), its leases reaped
            log.info("worker_registered_again", worker=child.worker_id, leases_given_back=released)

    def _not_just_started(self, deliveries: list[Delivery], looked_ms: int) -> list[Delivery]:
        """The deliveries whose job Redis does not show started since just before ``looked_ms``: one
        started that late is one the child began after its board was read (it runs it now), not one the
        snapshot brought back."""
        if not deliveries:
            return []
        rows = self.broker.jobs.summaries([(d.queue, str(d.job_id)) for d in deliveries], ("status", "started_ms"))
        return [
            d
            for d, (status, started) in zip(deliveries, rows, strict=True)
            if status != b"running" or int(started or 0) < looked_ms - JUST_STARTED_MS
        ]

    def _poll(self, child_ids: list[str], durable: bool) -> list[str]:
        return list(self.control.poll([self.supervisor_id, *child_ids], durable=durable))

    def _show_current(self) -> None:
        """Write to the registry which jobs each child runs, for the children where that changed (so the
        children themselves spend no command on it: ``resq workers`` is at most one tick behind)."""
        now = time.monotonic()
        if now - self._shown_at < TICK_S:
            return
        self._shown_at = now
        changed = [(child, jobs) for child in self.children.values() if (jobs := child.current()) != child.shown]
        if changed:
            self.broker.workers.show_current({child.worker_id: jobs for child, jobs in changed})
            for child, jobs in changed:
                child.shown = jobs

    def _reap_children(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is not None:
                self._child_exited(child, status)

    def _child_exited(self, child: _ChildProc, status: int) -> None:
        child.reader.close()
        child.board.close()
        code = os.waitstatus_to_exitcode(status)
        clean = code in (0, EXIT_RECYCLE)
        log.log(20 if clean else 40, "child_exited", child_pid=child.pid, exit_code=code, worker=child.worker_id)
        mode = "returned" if clean or self._stop_requests else "lost"
        try:
            self._step("child exit", lambda: self._forget_child(child, mode))
        except BrokerUnavailable as exc:
            log.warning("redis_unavailable", error=str(exc), during="child exit")
        if self._stop_requests or (self.config.burst and code == 0):
            return
        self._schedule_respawn(crashed_early=not clean and time.monotonic() - child.started < QUICK_CRASH_S)

    def _forget_child(self, child: _ChildProc, mode: str) -> None:
        self.maintenance.release_consumers([child.worker_id], mode)
        self.broker.workers.unregister([child.worker_id])
        self._unreleased.discard(child.worker_id)

    def _schedule_respawn(self, crashed_early: bool) -> None:
        """Replace a child at once, or after a growing pause when children keep dying as they start
        (a crash loop must not burn the CPU or flood the logs)."""
        if not crashed_early:
            self._crash_backoff_s = 0.0
            self._spawn()
            return
        self._crash_backoff_s = min(MAX_RESPAWN_DELAY_S, max(0.5, self._crash_backoff_s * 2))
        log.warning("child_respawn_delayed", delay_s=self._crash_backoff_s)
        self._respawn_at.append(time.monotonic() + self._crash_backoff_s)

    def _respawn_due(self) -> None:
        now = time.monotonic()
        due = [t for t in self._respawn_at if t <= now]
        self._respawn_at = [t for t in self._respawn_at if t > now]
        for _ in due:
            self._spawn()

    def _kill_children(self) -> None:
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._grace_deadline = None

    def _enforce_time_limits(self) -> None:
        """Kill a child whose job outlived its hard limit.

        A job's task (hence its limit) is looked up in Redis only once the job has run longer than the
        shortest limit of any registered task, so short jobs cost the supervisor nothing.
        """
        shortest = self._shortest_timeout
        if shortest is None:
            return
        now = time.monotonic()
        for child in list(self.children.values()):
            for running in list(child.running.values()):
                job = running.job
                if now - job.began <= shortest + KILL_MARGIN_S or not job.whole:
                    continue
                if not running.looked_up:
                    task = self.maintenance.task_of(job.delivery)
                    running.limit = None if task is None else task.options.timeout
                    running.looked_up = True
                if running.limit is not None and now - job.began > running.limit + KILL_MARGIN_S:
                    self._kill_for_timeout(child, job.delivery, running.limit)
                    break

    def _kill_for_timeout(self, child: _ChildProc, delivery: Delivery, limit: float) -> None:
        """A task ignored its hard limit: kill its child, record a failed attempt, let a new child start."""
        log.error("child_killed", child_pid=child.pid, job_id=delivery.job_id, reason=f"timeout after {limit:g} s")
        try:
            os.kill(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        child.running.clear()
        self.maintenance.record_failure(delivery, TimeLimitExceeded(limit), to_ms(limit))

    # -- signals ----------------------------------------------------------------------------------

    def _install_signals(self) -> None:
        def remember(signum: int, frame: FrameType | None) -> None:
            self._pending_signals.append(signum)
            if self._interruptible and signum in STOP_SIGNALS:
                self._interruptible = False
                raise _StopSignal

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGCONT):
            signal.signal(sig, remember)

    @contextlib.contextmanager
    def _stop_may_interrupt(self) -> Iterator[None]:
        """Let a stop signal raise ``_StopSignal`` into the block (a wait on Redis, nothing half-done)."""
        self._interruptible = True
        try:
            yield
        finally:
            self._interruptible = False

    def _stop_pending(self) -> bool:
        """Whether a stop was asked for (handled or still queued)."""
        return bool(self._stop_requests) or any(s in STOP_SIGNALS for s in self._pending_signals)

    def _handle_signals(self) -> None:
        while self._pending_signals:
            signum = self._pending_signals.pop(0)
            if signum in STOP_SIGNALS:
                self._stop(signum)
            else:
                log.info("signal", signal=signal.Signals(signum).name)
                self._forward(signum)

    def _stop(self, signum: int) -> None:
        self._stop_requests += 1
        name = signal.Signals(signum).name
        if self._stop_requests > 1:
            log.warning("stopping_now", signal=name)
            self._kill_children()
            return
        graceful = signum == signal.SIGQUIT
        log.info("stopping", signal=name, grace_period_s=None if graceful else self.config.grace_period_s)
        if not graceful:
            self._grace_deadline = time.monotonic() + self.config.grace_period_s
        self._forward(signal.SIGTERM)

    def _forward(self, signum: int) -> None:
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    # -- bookkeeping ------------------------------------------------------------------------------

    def _heartbeat_due(self) -> bool:
        now = time.monotonic()
        if now - self._last_heartbeat >= self.app.settings.heartbeat_interval:
            self._last_heartbeat = now
            return True
        return False
