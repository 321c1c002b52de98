"""What keeps jobs moving besides running them: promote due delayed jobs and retries, and give the leases of
dead workers back to their queues. ``resq_scheduler`` reuses it, so either alone keeps jobs moving.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from resq.app import Resq
from resq.broker import Subscription
from resq.clock import now_ms, to_ms
from resq.codec import decode_envelope
from resq.errors import BrokenKey, BrokerError, BrokerRefused, BrokerUnavailable, DecodeError
from resq.failures import WorkerLost, error_record, failed_attempt
from resq.job import Job, JobStatus
from resq.log import get_logger, job_context
from resq.outcomes import Delivery
from resq.task import Task

__all__ = ["BROKEN_KEY_HINT", "Maintenance", "command_refused", "set_aside", "task_of"]

log = get_logger("resq.worker")

#: Longest wait before the scheduled sets are looked at again, in seconds (a safety net under the
#: wake-up messages that producers publish when they schedule a job).
MAX_PROMOTE_WAIT_S = 5.0
#: What to do about a key of resq's that Redis says holds another type.
BROKEN_KEY_HINT = (
    "a key in resq's namespace holds a value of another type (something else wrote to it): resq renames it "
    "to {ns...}:broken:<ms>:<name> when a script names it; else delete or rename it (resq recreates it)"
)
#: A suspect is confirmed dead by a look this many heartbeat intervals after the first (a little under one:
#: looks come once per interval, and a live worker beats again within one).
CONFIRM_AFTER = 0.9
#: The backoff between two tries of maintenance while Redis does not answer, in seconds.
RETRY_MIN_S, RETRY_MAX_S = 0.1, 5.0


def set_aside(app: Resq, exc: BrokerError) -> bool:
    """If ``exc`` names a key of resq's that holds another type (``BrokenKey``), rename that key out of the
    way (``Admin.set_aside``: its value is kept for a look, resq recreates the key) and log it. Returns
    whether a key was set aside."""
    if not isinstance(exc, BrokenKey):
        return False
    try:
        moved_to = app.broker.admin.set_aside(exc.key)
    except BrokerError as failed:
        log.error("set_aside_failed", key=exc.key, error=str(failed))
        return False
    log.error("broken_key_set_aside", key=exc.key, moved_to=moved_to, error=str(exc), hint=BROKEN_KEY_HINT)
    return True


def command_refused(exc: BrokerError) -> bool:
    """Whether Redis refused one command (a key of the wrong type, say), not an outage or a refusal of
    resq altogether: the error the upkeep logs (with ``BROKEN_KEY_HINT``) and goes on from."""
    return not isinstance(exc, BrokerUnavailable | BrokerRefused)


class Maintenance:
    """Promotion and reaping for a set of queues (None: every known queue).

    Args:
        app: the app.
        queues: the queues whose scheduled sets to promote; None for every queue Redis knows.
    """

    def __init__(self, app: Resq, queues: list[str] | None) -> None:
        self.app = app
        self.broker = app.broker
        self.queues = queues
        self._promote_at = 0.0
        self._reap_at = 0.0
        self._wakeups: Subscription | None = None
        #: the current backoff while Redis does not answer (0: it answered last time)
        self._retry_s = 0.0
        #: consumer -> when a look first found it silent with leases (monotonic); reaped at a later look
        self._suspects: dict[str, float] = {}
        #: registered worker -> when a look first found its deadline passed; pruned at a later look
        self._silent: dict[str, float] = {}

    def seconds_until_due(self) -> float:
        """Seconds until the next promotion or reaping is due."""
        return max(0.0, min(self._promote_at, self._reap_at) - time.monotonic())

    def run_due(self, force: bool = False, extra_live: Iterable[str] = ()) -> int:
        """Promote and reap if due (or ``force``); returns how many jobs were promoted.

        Raises:
            BrokerError: Redis did not answer (``BrokerUnavailable``), or refused a command (a key of the
                wrong type); the next try is put off by a backoff that grows (``RETRY_MIN_S`` to
                ``RETRY_MAX_S``) until one succeeds, so a caller that loops on :meth:`seconds_until_due`
                waits instead of spinning.
        """
        try:
            moved = self._run_due(force, extra_live)
        except BrokerError:  # Redis away, or a key of the wrong type: not again at once
            self._retry_s = min(RETRY_MAX_S, max(RETRY_MIN_S, self._retry_s * 2))
            later = time.monotonic() + self._retry_s
            self._promote_at, self._reap_at = max(self._promote_at, later), max(self._reap_at, later)
            raise
        self._retry_s = 0.0
        return moved

    def _run_due(self, force: bool, extra_live: Iterable[str]) -> int:
        self._read_wakeups()
        now = time.monotonic()
        moved = 0
        if force or now >= self._promote_at:
            moved = self.promote()
        if force or now >= self._reap_at:
            self.reap(extra_live)
            self._reap_at = now + self.app.settings.heartbeat_interval
        return moved

    def promote(self, now: int | None = None) -> int:
        """Move every due job of the queues into them; schedule the next look at the earliest due time."""
        moved, earliest = 0, None
        for queue in self._queues():
            try:
                count, nxt = self.broker.queues.promote(queue, now)
            except BrokerError as exc:
                if not command_refused(exc):
                    raise
                if not set_aside(self.app, exc):
                    log.error("promote_failed", queue=queue, error=str(exc), hint=BROKEN_KEY_HINT)
                continue  # one queue's broken scheduled set must not hold up the others
            moved += count
            if nxt is not None and (earliest is None or nxt < earliest):
                earliest = nxt
        wait = MAX_PROMOTE_WAIT_S if earliest is None else (earliest - now_ms()) / 1000
        self._promote_at = time.monotonic() + min(max(wait, 0.0), MAX_PROMOTE_WAIT_S)
        if moved:
            log.info("promoted", jobs=moved)
        return moved

    def _queues(self) -> list[str]:
        return self.queues if self.queues is not None else self.broker.queues.known()

    def _read_wakeups(self) -> None:
        """A producer scheduled a job: look again no later than its due time."""
        if self._wakeups is None:
            self._wakeups = self.broker.queues.subscribe_wakeups()
        while (message := self._wakeups.message()) is not None:
            due = (_int(message, now_ms()) - now_ms()) / 1000
            self._promote_at = min(self._promote_at, time.monotonic() + max(due, 0.0))

    def reap(self, extra_live: Iterable[str] = ()) -> int:
        """Give back the leases of consumers whose worker stopped heartbeating; returns how many. Then
        apply the hand-off entries of workflows left by processes that died (``resq.broker.handoff``).

        A worker whose heartbeat deadline passed is only suspected at first: its leases are given back
        when a later look, about one heartbeat interval on (``CONFIRM_AFTER``, this process's clock), still
        finds it silent. After Redis itself was frozen or unreachable, every worker's deadline has passed at once;
        the live ones beat again within an interval and are cleared, so none is reaped for the outage.
        """
        live = self.broker.workers.live() | set(extra_live)
        stale_ms = to_ms(self.app.settings.heartbeat_interval * 3)
        now, released, silent = time.monotonic(), 0, set()
        confirm_s = self.app.settings.heartbeat_interval * CONFIRM_AFTER
        queues = self.broker.queues
        known = queues.known()
        for queue in known:
            for consumer in queues.consumers(queue):
                name = consumer["name"]
                if name in live:
                    continue
                if consumer["pending"]:
                    silent.add(name)
                    if now - self._suspects.setdefault(name, now) >= confirm_s:
                        released += self._release_all(queue, name, "lost")
                elif consumer["idle"] > stale_ms:
                    queues.forget_consumer(queue, name)
        self._suspects = {name: since for name, since in self._suspects.items() if name in silent}
        self._prune(now, confirm_s)
        self._sweep(known)
        return released

    def _sweep(self, queues: list[str]) -> None:
        """Apply the hand-off entries that processes which died left behind (``resq.broker.handoff``): the
        ends of members of joins, recorded but not yet counted in their joins."""
        applied = self.broker.queues.handoff.sweep(queues)
        if applied:
            log.info("handoffs_applied", entries=applied)

    def _prune(self, now: float, confirm_s: float) -> None:
        """Drop from the registry the workers found past their deadline at two looks, a confirmation apart
        (as for reaping: after an outage of Redis every deadline has passed, and live workers beat again
        before the second look)."""
        silent = set(self.broker.workers.silent())
        self._silent = {w: self._silent.get(w, now) for w in silent}
        dead = sorted(w for w, since in self._silent.items() if now - since >= confirm_s)
        if dead:
            self.broker.workers.unregister(dead)

    def release_consumers(self, worker_ids: Iterable[str], mode: str) -> int:
        """Give back every lease of these consumers (a stopping worker, a child that died)."""
        ids = list(worker_ids)
        queues = self.broker.queues.known()
        return sum(self._release_all(queue, worker_id, mode) for queue in queues for worker_id in ids)

    def _release_all(self, queue: str, consumer: str, mode: str) -> int:
        """Give back the leases of ``consumer`` in ``queue``. In ``lost`` mode a job that was running is a
        failed attempt (hooks, counters) before it goes back to its queue, or dead after too many losses."""
        queues, released = self.broker.queues, 0
        for delivery in queues.pending_of(queue, consumer):
            if mode == "lost" and self.record_failure(delivery, WorkerLost(), None):
                outcome = "lost"
            else:
                outcome = queues.release(delivery, mode, error=error_record(None, "WorkerLost", "worker lost"))
            if outcome != "gone":
                released += 1
                log.warning(
                    "lease_released", job_id=delivery.job_id, queue=queue, worker=consumer, mode=mode, outcome=outcome
                )
        queues.forget_consumer(queue, consumer)
        return released

    def record_failure(self, delivery: Delivery, exc: BaseException, duration_ms: int | None) -> bool:
        """Record a failed attempt of a *running* job that its own process could not record (killed past its
        hard limit, or dead): the one failure path runs here, hooks included.

        Returns:
            False when the job was not running (nothing recorded).
        """
        if delivery.job_id is None:
            return False
        delivery = self.broker.queues.with_fields(delivery)  # its flow: the outcome frees the job's slot
        assert delivery.job_id is not None
        status, task_name, attempt, lost, started_ms, stored = self.broker.jobs.summaries(
            [(delivery.queue, delivery.job_id)], ("status", "task", "attempt", "lost", "started_ms", "envelope")
        )[0]
        if status is None or status.decode() != JobStatus.RUNNING:
            return False
        name, number = (task_name or b"").decode(), int(attempt or 1)
        if duration_ms is None:
            duration_ms = max(0, now_ms() - int(started_ms or now_ms()))
        job: Job[Any] = Job(self.app, delivery.job_id, delivery.queue, task=name, attempt=number)
        job.options["meta"] = _meta(delivery.fields.get(b"envelope") or stored)  # for hooks, as in a child
        with job_context(job.id, name, delivery.queue, number):
            outcome = failed_attempt(
                self.app, self.app.tasks.get(name), job, delivery, exc, duration_ms, losses=int(lost or 0)
            )
        self.broker.queues.record([outcome])
        return True

    def task_of(self, delivery: Delivery) -> Task[Any, Any] | None:
        """The registered task of a leased job, if known."""
        return task_of(self.app, delivery)


def task_of(app: Resq, delivery: Delivery) -> Task[Any, Any] | None:
    """The registered task of a leased job, read from its record (None if unknown)."""
    if delivery.job_id is None:
        return None
    return app.tasks.get(app.broker.jobs.task_name(delivery.queue, delivery.job_id))


def _int(raw: bytes, default: int) -> int:
    try:
        return int(raw)
    except ValueError:
        return default


def _meta(raw: bytes | None) -> dict[str, Any]:
    """What travelled with a job (its envelope's ``meta``), or nothing when its envelope is unknown here."""
    try:
        return decode_envelope(raw).meta if raw else {}
    except DecodeError:
        return {}
