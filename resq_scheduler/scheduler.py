"""The scheduler: moves due delayed jobs into their queues and fires periodic entries, exactly once.

:meth:`Scheduler.tick` is one pass with an injectable clock and returns what it did;
:meth:`Scheduler.run` only loops: it sleeps until the earliest of the next cron tick, the next scheduled
job and the next reaping, wakes early when a producer schedules an earlier job (pub/sub), stops
gracefully on TERM/INT and rides out Redis outages with capped backoff.

Exactly once per tick, with any number of schedulers and no leader: a tick is enqueued under a
deterministic job id (``cron:<entry>:<tick ms>``) with an "only if absent" flag, *then* the entry's last
tick is moved forward by a compare-and-set (``cron:last``). The two steps live in different hash slots, so
they cannot be one script; in this order, a scheduler killed between them leaves a tick that the next
scheduler re-fires into the existing id (no duplicate), and a scheduler killed before the enqueue left
nothing behind (no loss).
"""

from __future__ import annotations

import functools
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from resq import producer
from resq.app import Resq
from resq.broker import Subscription
from resq.clock import from_ms, now_ms
from resq.errors import BrokerUnavailable, ConfigError, EncodeError, PayloadTooLarge, Veto
from resq.log import get_logger
from resq.maintenance import Maintenance
from resq.resque import ResqueDelayed
from resq.task import Task
from resq_scheduler.cron import DEFAULT_FIRST_GRACE_S, Spec, due_ticks
from resq_scheduler.schedule import PeriodicEntry, load_schedule_file
from resq_scheduler.store import CronState, Store

__all__ = ["MAX_SLEEP_S", "PROMOTE_BATCH", "Scheduler", "TickReport", "tick_job_id"]

log = get_logger("resq_scheduler")

#: Jobs moved per promote script (one atomic batch).
PROMOTE_BATCH = 1000
#: Batches per queue in one tick before the loop comes back (keeps a tick bounded).
MAX_BATCHES = 100
#: Longest sleep, in seconds, whatever is scheduled (a safety net under the wake-up messages).
MAX_SLEEP_S = 60.0
#: Longest sleep with ``--resque``, in seconds: Resque-family producers announce no delayed job, and a
#: due one waits at most this long (resque-scheduler itself looks every 5 s).
RESQUE_POLL_S = 1.0
#: Added to every computed wake-up so that the tick lands on, not just before, the due instant.
WAKE_SLACK_S = 0.001
#: Backoff bounds (seconds) while Redis is unavailable.
BACKOFF_MIN_S, BACKOFF_MAX_S = 0.1, 5.0
#: Most wake-up messages drained at once.
MAX_DRAIN = 10_000


def tick_job_id(entry: str, tick_ms: int) -> str:
    """The deterministic id of the job that fires ``entry`` at ``tick_ms``."""
    return f"cron:{entry}:{tick_ms}"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _grace(spec: Spec, now: datetime) -> float:
    """How late a tick may fire and still be on time: 1 s, or a quarter of the period if shorter (so that
    a late tick never fires just before the next one)."""
    period = (spec.next_after(now) - spec.previous_at_or_before(now)).total_seconds()
    return min(DEFAULT_FIRST_GRACE_S, period / 4)


def _ms(moment: datetime) -> int:
    """Milliseconds since the epoch, rounded down (a due time is reached only once it has passed)."""
    return int(moment.timestamp() * 1000)


@dataclass
class TickReport:
    """What one :meth:`Scheduler.tick` did."""

    #: the moment the tick ran for
    now: datetime
    #: delayed jobs and retries moved into their queues
    promoted: int = 0
    #: ``(entry, tick)`` of each tick this scheduler enqueued
    fired: list[tuple[str, datetime]] = field(default_factory=list)
    #: ``(entry, tick, reason)`` of each due tick not enqueued (``paused``, ``unique``, ``unknown task``,
    #: ``fired elsewhere``, ``error``)
    skipped: list[tuple[str, datetime, str]] = field(default_factory=list)
    #: leases of dead workers given back to their queues
    reaped: int = 0
    #: the earliest next cron tick or scheduled due time (None: nothing is scheduled)
    next_wakeup: datetime | None = None


class _Interrupted(Exception):
    """Raised by the signal handler to cut a sleep short."""


class Scheduler:
    """Moves delayed jobs and fires periodic entries; run any number of them at once.

    Args:
        app: the app (its tasks are the ones entries may name).
        entries: the periodic entries declared in code; None takes ``app.periodic_entries``.
        schedule_file: a TOML schedule file whose entries are added (see ``docs/scheduling.md``).
        clock: returns the current time (aware); injectable for tests.
        resque: also move resque-scheduler's delayed jobs of this Resque namespace (``--resque``;
            ``docs/resque.md``); None: not.

    Raises:
        ConfigError: an entry names an unknown task, the file is invalid, or two entries share a name.
    """

    def __init__(
        self,
        app: Resq,
        entries: Iterable[PeriodicEntry] | None = None,
        schedule_file: str | os.PathLike[str] | None = None,
        clock: Callable[[], datetime] | None = None,
        resque: str | None = None,
    ) -> None:
        self.app = app
        self.resque = None if resque is None else ResqueDelayed(app, resque)
        self.store = Store(app)
        self.maintenance = Maintenance(app, None)
        self.clock = clock or _utcnow
        self.entries = self._local_entries(entries, schedule_file)
        self._reap_at = 0.0
        self._stop = False
        self._sleeping = False
        self._warned: set[str] = set()

    def _local_entries(
        self, entries: Iterable[PeriodicEntry] | None, schedule_file: str | os.PathLike[str] | None
    ) -> dict[str, PeriodicEntry]:
        found = dict(self.app.periodic_entries) if entries is None else {e.name: e for e in entries}
        if schedule_file is not None:
            for entry in load_schedule_file(Path(schedule_file), known_task=self.app.tasks.__contains__):
                if entry.name in found and found[entry.name] != entry:
                    raise ConfigError(f"{os.fspath(schedule_file)}: entry {entry.name!r} is also declared in code")
                found[entry.name] = entry
        for entry in found.values():
            if entry.task not in self.app.tasks:
                raise ConfigError(f"periodic entry {entry.name!r}: unknown task {entry.task!r}")
        return found

    def all_entries(self, state: CronState | None = None) -> dict[str, PeriodicEntry]:
        """Entries persisted in Redis (``add_periodic``) overlaid with this scheduler's own, by name."""
        state = self.store.state() if state is None else state
        return {**state.entries, **self.entries}

    # -- one pass ---------------------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> TickReport:
        """Promote due jobs, fire due periodic entries, reap dead workers' leases when due.

        Args:
            now: the moment to act for (aware); default: the scheduler's clock.

        Returns:
            What was done, and when the next pass is needed.
        """
        now = self.clock() if now is None else now
        report = TickReport(now=now)
        report.promoted, next_due = self._promote(_ms(now))
        if self.resque is not None:
            moved, resque_due = self.resque.promote(_ms(now))
            report.promoted += moved
            next_due = min((d for d in (next_due, resque_due) if d is not None), default=None)
        state = self.store.state()
        entries = self.all_entries(state)
        for entry in sorted(entries.values(), key=lambda e: e.name):
            if entry.enabled:
                self._run_entry(entry, state, now, report)
        report.reaped = self._reap_if_due()
        report.next_wakeup = self._next_wakeup(entries.values(), now, next_due)
        self.app.hooks.run("scheduler_tick", self, report)
        return report

    def _promote(self, now: int) -> tuple[int, int | None]:
        """Move every job due at ``now`` (ms), a batch per script; returns (moved, earliest next due)."""
        moved, earliest = 0, None
        queues = self.app.broker.queues
        for queue in queues.known():
            nxt: int | None = None
            for _ in range(MAX_BATCHES):
                count, nxt = queues.promote(queue, now, PROMOTE_BATCH)
                moved += count
                if count < PROMOTE_BATCH:
                    break
            if nxt is not None and (earliest is None or nxt < earliest):
                earliest = nxt
        if moved:
            log.info("promoted", jobs=moved)
        return moved, earliest

    def _due(self, entry: PeriodicEntry, last: int | None, now: datetime) -> list[datetime]:
        """The ticks to fire now. An entry never seen before fires a tick only if ``now`` is exactly on it;
        otherwise its latest tick becomes its baseline and it fires from the next one (a late start-up
        must not fire a tick just before the next)."""
        if last is not None:
            return due_ticks(entry.spec, from_ms(last), now, entry.misfire, first_grace_s=_grace(entry.spec, now))
        ticks = due_ticks(entry.spec, None, now, entry.misfire, first_grace_s=0.0)
        if not ticks:
            self.store.move_last_tick(entry.name, _ms(entry.spec.previous_at_or_before(now)))
        return ticks

    def _run_entry(self, entry: PeriodicEntry, state: CronState, now: datetime, report: TickReport) -> None:
        ticks = self._due(entry, state.last.get(entry.name), now)
        if not ticks:
            return
        if entry.name in state.paused:
            self.store.move_last_tick(entry.name, _ms(ticks[-1]))  # a paused entry does not catch up on resume
            report.skipped.append((entry.name, ticks[-1], "paused"))
            return
        task = self.app.tasks.get(entry.task)
        if task is None:  # a run-time entry for a task this process lacks: leave it to a scheduler that has it
            self._warn_once(entry)
            report.skipped.append((entry.name, ticks[-1], "unknown task"))
            return
        for tick in ticks:
            try:
                self._fire(entry, task, tick, report)
            except Veto as exc:
                self.store.move_last_tick(entry.name, _ms(tick))  # a vetoed tick is done: it is not retried
                log.info("cron_skipped", entry=entry.name, tick=tick.isoformat(), reason="vetoed", detail=str(exc))
                report.skipped.append((entry.name, tick, "vetoed"))
            except (EncodeError, PayloadTooLarge) as exc:
                log.error("cron_fire_failed", entry=entry.name, error=str(exc))
                report.skipped.append((entry.name, tick, "error"))

    def _fire(self, entry: PeriodicEntry, task: Task[Any, Any], tick: datetime, report: TickReport) -> None:
        """Enqueue one tick under its deterministic id, then compare-and-set the entry's last tick."""
        queue, tick_ms = entry.queue or task.queue, _ms(tick)
        if entry.unique and (busy := self.store.unique_busy(entry.name, queue)):
            self.store.move_last_tick(entry.name, tick_ms)
            report.skipped.append((entry.name, tick, "unique"))
            log.info("cron_skipped", entry=entry.name, tick=tick.isoformat(), reason="unique", running=busy)
            return
        job_id = tick_job_id(entry.name, tick_ms)
        done = producer.enqueue(
            self.app,
            entry.task,
            entry.args,
            entry.kwargs,
            queue=queue,
            job_id=job_id,
            meta={"periodic": entry.name},
            if_absent=True,
        )
        self.store.move_last_tick(entry.name, tick_ms, job_id if entry.unique else None)
        if not done.created:
            report.skipped.append((entry.name, tick, "fired elsewhere"))
            return
        report.fired.append((entry.name, tick))
        log.info("cron_fired", entry=entry.name, tick=tick.isoformat(), job_id=job_id, queue=done.job.queue)

    def fire_now(self, entry: PeriodicEntry) -> str:
        """Enqueue one run of ``entry`` now, outside its schedule (``resq cron run``); returns the job id.

        Raises:
            ConfigError: the entry's task is not registered in this app.
        """
        task = self.app.tasks.get(entry.task)
        if task is None:
            raise ConfigError(f"entry {entry.name!r}: unknown task {entry.task!r} (pass the app with -A)")
        done = producer.enqueue(
            self.app,
            task.name,
            entry.args,
            entry.kwargs,
            queue=entry.queue or task.queue,
            meta={"periodic": entry.name},
        )
        return done.job.id

    def _warn_once(self, entry: PeriodicEntry) -> None:
        if entry.name not in self._warned:
            self._warned.add(entry.name)
            log.warning("cron_unknown_task", entry=entry.name, task=entry.task)

    def _reap_if_due(self) -> int:
        if time.monotonic() < self._reap_at:
            return 0
        self._reap_at = time.monotonic() + self.app.settings.heartbeat_interval
        return self.maintenance.reap()

    @staticmethod
    def _next_wakeup(entries: Iterable[PeriodicEntry], now: datetime, next_due_ms: int | None) -> datetime | None:
        candidates = [entry.spec.next_after(now) for entry in entries if entry.enabled]
        if next_due_ms is not None:
            candidates.append(max(from_ms(next_due_ms), now))
        return min(candidates, default=None)

    # -- the loop ---------------------------------------------------------------------------------

    def run(self) -> int:
        """Tick, sleep until the next thing is due, repeat; until TERM/INT. Returns the exit status (0)."""
        restore = self._install_signals()
        log.info("scheduler_started", pid=os.getpid(), entries=sorted(self.entries))
        wakeups = self.app.broker.queues.subscribe_wakeups()
        backoff = BACKOFF_MIN_S
        try:
            while not self._stop:
                try:
                    wakeups.message()  # subscribe before the tick: no wake-up is missed
                    report = self.tick()
                    self._sleep(wakeups, report.next_wakeup)
                    backoff = BACKOFF_MIN_S
                except _Interrupted:
                    break
                except Exception as exc:  # Redis away, or a bug: log, back off, keep the schedule alive
                    wakeups.close()
                    self.log_failure(exc, backoff)
                    self._pause(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX_S)
        except _Interrupted:
            pass
        finally:
            wakeups.close()
            restore()
        log.info("scheduler_stopped", pid=os.getpid())
        return 0

    def stop(self) -> None:
        """Ask :meth:`run` to return after the current pass (from another thread)."""
        self._stop = True
        self.app.broker.queues.wake()

    @staticmethod
    def log_failure(exc: BaseException, backoff: float) -> None:
        """Log a failed pass: a warning while Redis is away, an error with the traceback for anything else."""
        if isinstance(exc, BrokerUnavailable):
            log.warning("redis_unavailable", error=str(exc), retry_in_s=round(backoff, 2))
        else:
            log.error("scheduler_tick_failed", error=f"{type(exc).__name__}: {exc}", exc_info=True)

    def seconds_until(self, wake_at: datetime | None) -> float:
        """How long to wait before the next pass: until ``wake_at``, and at most until reaping is due."""
        limit = min(MAX_SLEEP_S, max(self._reap_at - time.monotonic(), 0.0))
        if self.resque is not None:  # Resque producers announce no delayed job: look every second
            limit = min(limit, RESQUE_POLL_S)
        if wake_at is None:
            return limit
        return min(max((wake_at - self.clock()).total_seconds() + WAKE_SLACK_S, 0.0), limit)

    def _sleep(self, wakeups: Subscription, wake_at: datetime | None) -> None:
        """Wait until ``wake_at``, or until a wake-up message announces an earlier due time."""
        deadline = time.monotonic() + self.seconds_until(wake_at)
        while not self._stop:
            left = deadline - time.monotonic()
            if left <= 0:
                self._drain(wakeups)
                return
            due = self._blocking(functools.partial(_wakeup, wakeups, left))
            if due is not None:
                log.debug("woken", due_ms=due)
                deadline = min(deadline, time.monotonic() + max((due - now_ms()) / 1000 + WAKE_SLACK_S, 0.0))

    def _drain(self, wakeups: Subscription) -> None:
        """Read the wake-ups already received: the tick about to run covers them."""
        for _ in range(MAX_DRAIN):
            if wakeups.message() is None:
                return

    def _pause(self, seconds: float) -> None:
        self._blocking(lambda: time.sleep(random.uniform(seconds / 2, seconds)))

    def _blocking(self, wait: Callable[[], Any]) -> Any:
        """Run a blocking wait that TERM/INT may cut short (the handler raises only inside it)."""
        self._sleeping = True
        try:
            if self._stop:
                raise _Interrupted
            return wait()
        finally:
            self._sleeping = False

    def _install_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handle(signum: int, frame: FrameType | None) -> None:
            log.info("scheduler_stopping", signal=signal.Signals(signum).name)
            self._stop = True
            if self._sleeping:
                raise _Interrupted

        previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore


def _wakeup(wakeups: Subscription, timeout_s: float) -> int | None:
    """Block up to ``timeout_s`` for a wake-up; returns its due time (ms), or None on timeout."""
    raw = wakeups.message(timeout_s)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return now_ms()
