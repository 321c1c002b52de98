"""One worker child process: its signals, its fetching threads, its watchdog.

Signals, as Resque operators know them (the supervisor forwards them to every child):

- TERM, INT, QUIT: stop fetching, finish the jobs in hand, give unstarted leases back, exit.
- USR1: stop the running job(s) now; each counts as a failed attempt.
- USR2: pause fetching; CONT: resume.
"""

from __future__ import annotations

import contextlib
import ctypes
import resource
import signal
import sys
import threading
import time
from dataclasses import dataclass
from types import FrameType
from typing import Any

from resq.app import Resq
from resq.errors import BrokerUnavailable, SoftTimeout
from resq.failures import CancelInterrupt, JobInterrupted, TimeLimitExceeded
from resq.log import get_logger
from resq.maintenance import task_of
from resq.outcomes import Delivery
from resq.worker.board import Board
from resq.worker.consumer import Consumer, ConsumerState, FetchInterrupted
from resq.worker.executor import Executor, LoopThread
from resq.worker.messages import ChildMessage, JobBegan
from resq.worker.timeouts import interrupt_thread

__all__ = ["EXIT_RECYCLE", "ChildConfig", "run_child"]

log = get_logger("resq.worker")

#: prctl option: the signal a process gets when its parent dies (linux/prctl.h).
PR_SET_PDEATHSIG = 1
#: Exit status of a child that stopped to be replaced (max jobs or memory reached).
EXIT_RECYCLE = 100
#: Seconds between two looks of the watchdog at cancellations and time limits.
WATCH_INTERVAL_S = 0.5


@dataclass(frozen=True)
class ChildConfig:
    """What a child needs to know from its supervisor."""

    worker_id: str
    queues: list[str]
    threads: int = 1
    prefetch: int | None = None
    burst: bool = False
    max_jobs: int | None = None
    max_memory_mb: int | None = None


class Child:
    """The running state of one child process."""

    def __init__(self, app: Resq, config: ChildConfig, board: Board) -> None:
        self.app = app
        self.config = config
        self.board = board
        #: thread ident -> its row of the board
        self._rows: dict[int, int] = {}
        self.state = ConsumerState()
        self.loop = LoopThread()
        self.executor = Executor(app, self.loop.run)
        self._main = threading.main_thread().ident
        self._pending_interrupt: type[BaseException] = JobInterrupted
        #: thread ident -> (monotonic start, soft timeout sent)
        self._began: dict[int, tuple[float, bool]] = {}
        self.recycle = False
        #: job id -> its task, for the watchdog's time limits
        self._tasks: dict[str, Any] = {}

    def on_job(self, message: ChildMessage) -> None:
        """Show the supervisor which job each thread runs, on the board (it enforces hard time limits)."""
        row = self._row_of(message.thread)
        if isinstance(message, JobBegan):
            began = _now()
            self._began[message.thread] = (began, False)
            self.board.begin(row, message.delivery, began)
            return
        self._began.pop(message.thread, None)
        self._tasks.pop(str(message.job_id), None)
        self.board.end(row)
        self._check_recycle()

    def _row_of(self, thread: int) -> int:
        row = self._rows.get(thread)
        if row is None:
            with self.state.lock:
                row = self._rows.setdefault(thread, len(self._rows))
        return row

    def _check_recycle(self) -> None:
        cfg = self.config
        if cfg.max_jobs is None and cfg.max_memory_mb is None:
            return
        too_many = cfg.max_jobs is not None and self.state.processed >= cfg.max_jobs
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rss_mb = rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB elsewhere
        too_big = cfg.max_memory_mb is not None and rss_mb >= cfg.max_memory_mb
        if (too_many or too_big) and not self.state.stopping.is_set():
            log.info("child_recycle", processed=self.state.processed, rss_mb=round(rss_mb, 1))
            self.recycle = True
            self.state.stopping.set()

    def install_signals(self) -> None:
        """Route the operator's signals to the shared state."""

        def stop(signum: int, frame: FrameType | None) -> None:
            self.state.stopping.set()
            if self.state.waiting_on_main:
                self.state.waiting_on_main = False
                raise FetchInterrupted

        def kill_jobs(signum: int, frame: FrameType | None) -> None:
            reason, self._pending_interrupt = self._pending_interrupt, JobInterrupted
            self.interrupt_all(reason if reason is not JobInterrupted else _Usr1Killed)

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            signal.signal(sig, stop)
        signal.signal(signal.SIGUSR1, kill_jobs)
        signal.signal(signal.SIGUSR2, lambda s, f: self.state.paused.set())
        signal.signal(signal.SIGCONT, lambda s, f: self.state.paused.clear())

    def interrupt_all(self, exc_type: type[BaseException]) -> None:
        """Stop every running job of this child with ``exc_type``."""
        with self.state.lock:
            idents = list(self.state.running)
        for ident in idents:
            self.interrupt(ident, exc_type)

    def interrupt(self, ident: int, exc_type: type[BaseException]) -> None:
        """Stop the job running on thread ``ident``."""
        if ident == self._main and threading.get_ident() == self._main:
            raise exc_type()
        if ident == self._main:
            self._pending_interrupt = exc_type  # the USR1 handler raises it on the main thread
            signal.pthread_kill(ident, signal.SIGUSR1)
        else:
            interrupt_thread(ident, exc_type)

    def watch(self) -> None:
        """Watchdog thread: cancellations asked for running jobs, time limits of non-main threads."""
        while not self.state.abort.wait(WATCH_INTERVAL_S):
            with self.state.lock:
                running = dict(self.state.running)
            if not running:
                continue
            try:
                self._check_cancellations(running)
            except BrokerUnavailable:
                continue
            self._check_thread_limits(running)

    def _check_cancellations(self, running: dict[int, Delivery]) -> None:
        by_queue: dict[str, dict[str, int]] = {}
        for ident, delivery in running.items():
            by_queue.setdefault(delivery.queue, {})[str(delivery.job_id)] = ident
        for queue, ids in by_queue.items():
            for job_id in self.app.broker.queues.cancel_requested(queue, list(ids)):
                log.info("cancel_running", job_id=job_id, queue=queue)
                self.interrupt(ids[job_id], CancelInterrupt)

    def _check_thread_limits(self, running: dict[int, Delivery]) -> None:
        """Time limits of jobs on fetching threads other than the main one (which uses SIGALRM).

        The exception lands at the thread's next bytecode; a thread stuck in a blocking call is
        stopped by the supervisor, which kills the child past the hard limit.
        """
        for ident, delivery in running.items():
            if ident == self._main or ident not in self._began:
                continue
            began, soft_sent = self._began[ident]
            task = self._task_of(delivery)
            if task is None:
                continue
            elapsed, options = _now() - began, task.options
            if options.timeout is not None and elapsed > options.timeout:
                self.interrupt(ident, _timeout_type(options.timeout))
            elif options.soft_timeout is not None and elapsed > options.soft_timeout and not soft_sent:
                self._began[ident] = (began, True)
                self.interrupt(ident, SoftTimeout)

    def _task_of(self, delivery: Delivery) -> Any:
        """The task of a running job, read from Redis once per job."""
        job_id = str(delivery.job_id)
        if job_id not in self._tasks:
            self._tasks[job_id] = task_of(self.app, delivery)
        return self._tasks[job_id]

    def run(self) -> int:
        """Run the fetching threads until stopped; returns the exit status."""
        cfg = self.config
        consumers = [
            Consumer(
                self.app,
                cfg.worker_id,
                cfg.queues,
                prefetch=cfg.prefetch,
                burst=cfg.burst,
                state=self.state,
                executor=self.executor,
                on_job=self.on_job,
            )
            for _ in range(cfg.threads)
        ]
        threading.Thread(target=self.watch, name="resq-watch", daemon=True).start()
        extra = [threading.Thread(target=c.run, name=f"resq-fetch-{i}") for i, c in enumerate(consumers[1:])]
        for thread in extra:
            thread.start()
        try:
            consumers[0].run()
        finally:
            for thread in extra:
                thread.join()
            self.state.abort.set()
            self.loop.stop()
        return EXIT_RECYCLE if self.recycle else 0


class _Usr1Killed(JobInterrupted):
    def __init__(self) -> None:
        super().__init__("killed by USR1")


def _timeout_type(seconds: float) -> type[BaseException]:
    """A ``TimeLimitExceeded`` that needs no argument (asynchronous exceptions are raised by type)."""

    def init(self: TimeLimitExceeded) -> None:
        TimeLimitExceeded.__init__(self, seconds)

    return type("TimeLimitExceeded", (TimeLimitExceeded,), {"__init__": init})


def _now() -> float:
    return time.monotonic()


def _stop_with_parent() -> None:
    """Ask Linux to send TERM to this child when its supervisor dies (so no child outlives it)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def run_child(app: Resq, config: ChildConfig, board: Board) -> int:
    """The whole life of a child after fork: register, announce, run, exit status."""
    _stop_with_parent()
    child = Child(app, config, board)
    child.install_signals()
    app.hooks.run("child_start", child)
    return child.run()
