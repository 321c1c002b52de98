"""The body of one worker child: fetch leases in batches, perform them, record outcomes.

Each fetching thread runs :meth:`Consumer.step` in a loop. One step fetches a batch of leases
(blocking in Redis, no poll interval), then for each job records the previous outcome and starts the
next attempt in a single round trip, so a batch costs one round trip per job plus one.

A step needs no thread, subprocess or signal: a test (or an embedding program) can drive a consumer
one step at a time in-process and read what each step did from its :class:`StepReport`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from resq.app import Resq
from resq.broker.queues import MAX_ID_BYTES
from resq.clock import now_ms
from resq.codec import pack
from resq.errors import BrokerError, BrokerUnavailable
from resq.failures import error_record
from resq.log import get_logger
from resq.maintenance import BROKEN_KEY_HINT, command_refused, set_aside
from resq.outcomes import Cancelled, Dead, Delivery, Discarded, Held, Lost, Outcome, Retried, Started, Succeeded
from resq.shards import rotated
from resq.worker.executor import Executor
from resq.worker.messages import ChildMessage, JobBegan, JobEnded

__all__ = ["OUTCOME_KINDS", "Consumer", "ConsumerState", "FetchInterrupted", "StepReport"]

log = get_logger("resq.worker")

#: Longest pause between reconnection attempts while Redis is away, in seconds: short, so a worker is
#: fetching again within about a second of Redis (or the network) coming back.
RECONNECT_CAP_S = 1.0
#: Longest time between two looks of a consumer at its queues' pause flags, in seconds (a resumed queue is
#: served again within it), and how old a look may be for a fetched batch to start (a paused queue's jobs
#: stop starting within it: a round trip per batch, not per job).
PAUSED_LOOK_S, PAUSES_FRESH_S = 1.0, 0.05
#: Longest silence between two log lines about a command Redis keeps refusing, in seconds.
REFUSED_LOG_EVERY_S = 30.0
#: How often a consumer waiting for Redis looks whether it was asked to stop, in seconds.
STOP_POLL_S = 0.1
#: Adaptive prefetch: the most leases per fetch, and how long a batch should take at most, in seconds.
ADAPTIVE_MAX = 100
ADAPTIVE_WINDOW_S = 0.05
#: Longest time counters of finished jobs wait before they are added to Redis, in seconds.
COUNTERS_EVERY_S = 0.5
#: In burst mode, scheduled jobs due within this many seconds (retries, mostly) are waited for.
BURST_HORIZON_S = 10.0
#: Longest wait of a fetch in :meth:`Consumer.run`, in seconds (then it looks at its flags again).
RUN_BLOCK_S = 2.0
#: The name of each kind of outcome in a :class:`StepReport` (what the outcome makes of the job).
OUTCOME_KINDS: dict[type, str] = {
    Succeeded: "succeeded",
    Retried: "retrying",
    Dead: "dead",
    Lost: "lost",
    Cancelled: "cancelled",
    Discarded: "discarded",
    Held: "held",
}


def _raw_fields(delivery: Delivery) -> bytes:
    """An entry's fields, packed as they are, to keep with a dead record."""
    return pack({k.decode("utf-8", "replace"): v for k, v in delivery.fields.items()})


def _set_aside(delivery: Delivery, job_id: str, kind: str, reason: str, raw: bytes) -> Outcome:
    """An entry no attempt can run: a dead job ``job_id`` with the error ``kind: reason`` and ``raw`` kept,
    logged; it counts no failed attempt."""
    log.error("dead", job_id=job_id, queue=delivery.queue, reason=reason)
    return Dead(delivery, job_id, error_record(None, kind, reason), 0, raw=raw, failed_attempt=False)


class FetchInterrupted(BaseException):
    """Raised by the stop signal handler into a blocking fetch on the main thread, so a stopping child
    does not wait out the fetch. Entries the interrupted fetch leased stay pending for this consumer and
    are given back by the supervisor when the child exits."""


@dataclass(frozen=True)
class StepReport:
    """What one :meth:`Consumer.step` did."""

    #: leases the fetch took
    fetched: int = 0
    #: one outcome per delivery taken in hand (run, discarded, or dead as foreign), in the order taken
    outcomes: tuple[Outcome, ...] = ()
    #: leases not started because the consumer was asked to stop or pause mid-batch: given back to their
    #: queue (or, while Redis is away, left for the supervisor to give back)
    handed_back: int = 0
    #: burst mode only: the queues are empty and nothing is due soon (the consumer is done)
    drained: bool = False

    @property
    def performed(self) -> int:
        """How many deliveries were taken in hand (each has an outcome)."""
        return len(self.outcomes)

    @property
    def kinds(self) -> dict[str, int]:
        """How many outcomes of each kind (named by ``OUTCOME_KINDS``), e.g. ``{"succeeded": 2}``."""
        return dict(Counter(OUTCOME_KINDS[type(outcome)] for outcome in self.outcomes))


@dataclass
class ConsumerState:
    """What a child shares between its fetching threads, its signal handlers and its supervisor."""

    #: set: finish the jobs in hand, fetch no more
    stopping: threading.Event = field(default_factory=threading.Event)
    #: set: give back unstarted leases at once
    abort: threading.Event = field(default_factory=threading.Event)
    #: set: fetch nothing until cleared (USR2 / CONT)
    paused: threading.Event = field(default_factory=threading.Event)
    processed: int = 0
    #: True while the main thread waits in a blocking fetch (a stop signal may then interrupt it)
    waiting_on_main: bool = False
    #: thread ident -> the delivery it is performing
    running: dict[int, Delivery] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Consumer:
    """Fetches and performs jobs for one worker child.

    Args:
        app: the app (its registry decides what may run).
        worker_id: this child's id, used as its consumer name in every queue's group.
        queues: queue names in priority order.
        prefetch: leases taken per fetch; None (the default) adapts it to how long jobs take: as many as
            run in ``ADAPTIVE_WINDOW_S`` (1 to ``ADAPTIVE_MAX``), so fast jobs cost one fetch per batch
            while slow ones are leased one at a time and stay available to other workers.
        burst: stop once the queues are empty.
        state: shared flags and counters.
        executor: performs one attempt.
        on_job: called with a :class:`~resq.worker.messages.JobBegan` before and a
            :class:`~resq.worker.messages.JobEnded` after each attempt (the child reports them to its
            supervisor, which enforces hard timeouts).
    """

    def __init__(
        self,
        app: Resq,
        worker_id: str,
        queues: list[str],
        *,
        prefetch: int | None = None,
        burst: bool = False,
        state: ConsumerState | None = None,
        executor: Executor | None = None,
        on_job: Callable[[ChildMessage], None] | None = None,
    ) -> None:
        self.app = app
        self.broker = app.broker
        self.worker_id = worker_id
        self.queues = app.served(queues)  # a sharded queue as its shards
        self.prefetch = prefetch
        self.burst = burst
        self.state = state or ConsumerState()
        self.executor = executor or Executor(app)
        self._on_job = on_job or (lambda message: None)
        self._backoff_s = 0.0
        #: the adaptive batch size, and the moving average of one job's time (None: not measured yet)
        self._adaptive = 1
        self._job_s: float | None = None
        #: outcomes recorded whose counters are not added yet, and when counters were last added
        self._uncounted: list[Outcome] = []
        self._counted_at = time.monotonic()
        #: when a refused command was last logged (monotonic)
        self._refused_logged = -REFUSED_LOG_EVERY_S
        #: the paused queues among ``queues``, their priorities above 0, and when the consumer last looked
        #: at both (monotonic)
        self._paused: set[str] = set()
        self._levels: dict[str, list[int]] = {}
        self._pauses_looked = -PAUSED_LOOK_S
        #: how many fetches this consumer made: the shard of each sharded queue its next fetch starts at
        self._turn = 0

    def run(self) -> None:
        """Loop over :meth:`step` until stopped (or, in burst mode, until the queues are empty)."""
        try:
            self._loop()
        finally:
            with contextlib.suppress(BrokerUnavailable):
                self.flush_counters()

    def _loop(self) -> None:
        while not self.state.stopping.is_set():
            if self.state.paused.is_set():
                self.state.stopping.wait(0.2)
                continue
            try:
                report = self.step(RUN_BLOCK_S)
            except FetchInterrupted:
                return  # asked to stop while waiting for jobs: what the fetch leased is given back
            except BrokerError as exc:
                self._wait_for_redis(exc)
                continue
            self._backoff_s = 0.0
            if report.drained:
                return

    def step(self, block_s: float | None = None) -> StepReport:
        """Fetch one batch (up to ``prefetch`` leases), perform it, record its outcomes.

        Needs no thread, subprocess or signal. Redis errors propagate as ``BrokerUnavailable`` from the
        fetch; once jobs are in hand, their outcomes are recorded whatever happens to Redis meanwhile.

        Args:
            block_s: how long the fetch may wait for a job (None: not at all). In burst mode the fetch
                never waits; an empty step promotes due jobs and waits for retries due soon instead.

        Returns:
            What the step did; ``drained`` (burst mode) when nothing is left to do.

        Raises:
            FetchInterrupted: on the main thread, when ``state.stopping`` is already set.
        """
        deliveries = self._fetch(None) if self._uncounted or self.burst else []
        waited = False
        if not deliveries and not self.burst:
            self.flush_counters()  # about to wait for work: add what is not counted yet
            deliveries, waited = self._fetch(block_s), block_s is not None
        if not deliveries and self.burst and not self._wait_for_due_jobs():
            # Another process (the supervisor, a scheduler) may have promoted a job meanwhile: look once more.
            deliveries = self.broker.queues.fetch(self.worker_id, self.queues, self.batch_size, None, self._levels)
            if not deliveries:
                return StepReport(drained=True)
        if not deliveries:
            return StepReport()
        kept = self._not_paused(deliveries, waited)
        report = self.perform_batch(kept) if kept else StepReport()
        held = len(deliveries) - len(kept)
        return dataclasses.replace(report, fetched=len(deliveries), handed_back=report.handed_back + held)

    def _fetch(self, block_s: float | None) -> list[Delivery]:
        """Fetch a batch; on the main thread a stop signal may cut the blocking wait short."""
        main = threading.current_thread() is threading.main_thread()
        if main:
            self.state.waiting_on_main = True
            if self.state.stopping.is_set():  # a signal that came just before the flag was set
                self.state.waiting_on_main = False
                raise FetchInterrupted
        try:
            queues = self._unpaused()
            if not queues:  # every queue is paused: look again a little later
                self.state.stopping.wait(min(block_s or 0.0, PAUSED_LOOK_S))
                return []
            self._turn += 1
            queues = rotated(queues, self._turn)  # each shard in turn first (resq.shards)
            return self.broker.queues.fetch(self.worker_id, queues, self.batch_size, block_s, self._levels)
        finally:
            if main:
                self.state.waiting_on_main = False

    def _unpaused(self) -> list[str]:
        """The queues to fetch from: all but the paused ones, as last looked at (``PAUSED_LOOK_S`` ago at
        most, so a resumed queue is served again within that)."""
        if time.monotonic() - self._pauses_looked >= PAUSED_LOOK_S:
            self._look_at_pauses()
        return [q for q in self.queues if q not in self._paused] if self._paused else self.queues

    def _look_at_pauses(self) -> None:
        """Read the queues' pause flags and priorities (the streams a fetch reads), in one round trip."""
        self._paused, self._levels = self.broker.queues.look(self.queues)
        self._pauses_looked = time.monotonic()

    def _not_paused(self, deliveries: list[Delivery], waited: bool) -> list[Delivery]:
        """The deliveries to perform. A batch fetched by a read that may have waited, or ``PAUSES_FRESH_S``
        or more after the last look at the pause flags, looks again (a round trip per batch, not per
        job); the leases of a paused queue go back to its front unstarted."""
        if waited or time.monotonic() - self._pauses_looked >= PAUSES_FRESH_S:
            self._look_at_pauses()
        if not self._paused:
            return deliveries
        self._hand_back([d for d in deliveries if d.queue in self._paused])
        return [d for d in deliveries if d.queue not in self._paused]

    def perform_batch(self, deliveries: list[Delivery]) -> StepReport:
        """Perform leased deliveries in order; hand back those not started once asked to stop or pause.

        Each job's outcome is recorded with the start of the next. Counters are summed and added at most
        every ``COUNTERS_EVERY_S`` (and when the consumer goes idle or stops), not per job or per batch.
        """
        outcomes: list[Outcome] = []
        done: list[Outcome] = []
        began = time.monotonic()
        for index, delivery in enumerate(deliveries):
            if self._held_up():
                self._record(outcomes, self._counters(flush=True))
                self._hand_back(deliveries[index:])
                return StepReport(len(deliveries), tuple(done), handed_back=len(deliveries) - index)
            started = self._start(delivery, outcomes, self._counters())
            outcomes = [self._perform(started)]
            self._uncounted += outcomes
            done += outcomes
        self._record(outcomes, self._counters())
        self._adapt(time.monotonic() - began, len(deliveries))
        return StepReport(len(deliveries), tuple(done))

    @property
    def batch_size(self) -> int:
        """Leases the next fetch takes: ``prefetch``, or the adaptive size."""
        return self.prefetch if self.prefetch is not None else self._adaptive

    def _adapt(self, elapsed_s: float, jobs: int) -> None:
        """Size the next batch so that it takes about ``ADAPTIVE_WINDOW_S`` (moving average of a job's time)."""
        per_job = elapsed_s / max(jobs, 1)
        self._job_s = per_job if self._job_s is None else (self._job_s + per_job) / 2
        self._adaptive = max(1, min(ADAPTIVE_MAX, int(ADAPTIVE_WINDOW_S / max(self._job_s, 1e-6))))

    def _counters(self, flush: bool = False) -> list[Outcome]:
        """The outcomes whose counters to add now: all not yet counted, when ``flush`` or when the last
        addition is ``COUNTERS_EVERY_S`` old; else none (they wait for a later round trip)."""
        if not self._uncounted or (not flush and time.monotonic() - self._counted_at < COUNTERS_EVERY_S):
            return []
        found, self._uncounted, self._counted_at = self._uncounted, [], time.monotonic()
        return found

    def flush_counters(self) -> None:
        """Add the counters not yet added (the consumer is idle or stopping)."""
        if self._uncounted:
            self._record([], self._counters(flush=True))

    def _held_up(self) -> bool:
        """Whether the consumer was asked to stop, pause or abort (then it starts no more jobs)."""
        return self.state.stopping.is_set() or self.state.paused.is_set() or self.state.abort.is_set()

    def _start(self, delivery: Delivery, outcomes: list[Outcome], counted: list[Outcome]) -> Started:
        """Record outcomes and start ``delivery`` in one round trip, riding out a Redis outage."""
        while True:
            try:
                started = self.broker.queues.start(self.worker_id, delivery, outcomes, counted)
            except BrokerError as exc:
                self._wait_for_redis(exc)
                continue
            self._not_counted(started.refused)
            return started

    def _record(self, outcomes: list[Outcome], counted: list[Outcome]) -> None:
        """Record outcomes; while Redis is away keep them and retry (a job is never silently lost)."""
        while outcomes or counted:
            try:
                self._not_counted(self.broker.queues.record(outcomes, counted))
                return
            except BrokerError as exc:
                self._wait_for_redis(exc)

    def _not_counted(self, refused: tuple[Outcome, ...]) -> None:
        """Outcomes refused as stale count nothing: drop those whose counters are not added yet."""
        if refused:
            gone = {id(outcome) for outcome in refused}
            self._uncounted = [outcome for outcome in self._uncounted if id(outcome) not in gone]

    def _perform(self, started: Started) -> Outcome:
        delivery = started.delivery
        if delivery.foreign:
            return self._foreign_entry_dead(delivery)
        if started.held is not None:
            log.info(started.held, job_id=delivery.job_id, queue=delivery.queue)
            return Held(delivery, str(delivery.job_id), started.held)
        if not started.runnable:
            if started.orphan:
                return self._orphan_dead(delivery)
            return Discarded(delivery, str(delivery.job_id))  # cancelled, finished, or its queue cleared
        ident = threading.get_ident()
        with self.state.lock:
            self.state.running[ident] = delivery
        self._on_job(JobBegan.of(delivery, ident))
        try:
            return self.executor.perform(started)
        finally:
            with self.state.lock:
                self.state.running.pop(ident, None)
                self.state.processed += 1
            self._on_job(JobEnded.of(delivery, ident))

    def _foreign_entry_dead(self, delivery: Delivery) -> Outcome:
        """An entry that is not a resq job: keep its raw fields as a dead job, and carry on."""
        job_id = "garbage-" + delivery.entry  # the id prefix is part of the data model (docs/design.md)
        reason = f"not a resq queue entry: expected an 'id' of 1 to {MAX_ID_BYTES} bytes of UTF-8 and an envelope"
        return _set_aside(delivery, job_id, "DecodeError", reason, _raw_fields(delivery))

    def _orphan_dead(self, delivery: Delivery) -> Outcome:
        """An entry whose job has no record (something deleted it under the waiting entry): a dead job
        under its own id, with the envelope the entry carried (so it can be retried), and carry on."""
        reason = "no job record for this queue entry (deleted while the job waited)"
        raw = delivery.fields.get(b"envelope") or _raw_fields(delivery)
        return _set_aside(delivery, str(delivery.job_id), "OrphanEntry", reason, raw)

    def _hand_back(self, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            try:
                self.broker.queues.release(delivery, "returned")
            except BrokerError:
                return  # the supervisor or the reaper gives them back once Redis answers

    def _wait_for_due_jobs(self) -> bool:
        """In burst mode, with the queues empty: promote due jobs, and wait for retries and delayed
        jobs due within ``BURST_HORIZON_S``. Returns False when there is nothing left to wait for."""
        moved, earliest = 0, None
        for queue in self.queues:
            count, nxt = self.broker.queues.promote(queue)
            moved += count
            earliest = nxt if earliest is None or (nxt is not None and nxt < earliest) else earliest
        if moved:
            return True
        if earliest is None or earliest - now_ms() > BURST_HORIZON_S * 1000:
            return False
        self.state.stopping.wait(max(0.0, (earliest - now_ms()) / 1000))
        return True

    def _wait_for_redis(self, exc: BrokerError) -> None:
        """Wait before the next try after ``exc``: Redis away (a growing backoff, up to
        ``RECONNECT_CAP_S``), or a command refused. A key of the wrong type that a script named is set aside
        first; another refusal is logged at most every ``REFUSED_LOG_EVERY_S``. A refusal of resq altogether
        (``BrokerRefused``) ends the child."""
        if not isinstance(exc, BrokerUnavailable) and not command_refused(exc):
            raise exc
        moved = set_aside(self.app, exc)
        self._backoff_s = min(RECONNECT_CAP_S, max(0.1, self._backoff_s * 2))
        delay = random.uniform(self._backoff_s / 2, self._backoff_s)
        if isinstance(exc, BrokerUnavailable):
            log.warning("redis_unavailable", error=str(exc), retry_in_s=round(delay, 2))
        elif not moved and time.monotonic() - self._refused_logged >= REFUSED_LOG_EVERY_S:
            self._refused_logged = time.monotonic()
            log.error("command_refused", error=str(exc), retry_in_s=round(delay, 2), hint=BROKEN_KEY_HINT)
        deadline = time.monotonic() + delay
        # Looks at the flags often: a stop signal only sets them (waiting on the event the handler sets
        # could deadlock), and a stopping child must not sit out a long backoff.
        while not (self.state.stopping.is_set() or self.state.abort.is_set()):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.state.abort.wait(min(left, STOP_POLL_S))
        # Asked to stop while Redis is away: what was not recorded stays leased and is given back by a
        # reaper once Redis answers (at worst the job runs again: at-least-once).
        raise SystemExit(0)
