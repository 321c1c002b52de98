"""What a worker does besides running jobs: promote due delayed jobs and retries, and give the leases of
dead workers back to their queues. ``resq_scheduler`` reuses it, so either alone keeps jobs moving.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from resq.app import Resq
from resq.broker import CONNECTION_ERRORS, Delivery
from resq.clock import now_ms, to_ms
from resq.log import get_logger
from resq.task import Task
from resq.worker.executor import error_record

__all__ = ["Maintenance", "task_of"]

log = get_logger("resq.worker")

#: Longest wait before the scheduled sets are looked at again, in seconds (a safety net under the
#: wake-up messages that producers publish when they schedule a job).
MAX_PROMOTE_WAIT_S = 5.0


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
        self._pubsub: Any = None

    def seconds_until_due(self) -> float:
        """Seconds until the next promotion or reaping is due."""
        return max(0.0, min(self._promote_at, self._reap_at) - time.monotonic())

    def run_due(self, force: bool = False, extra_live: Iterable[str] = ()) -> int:
        """Promote and reap if due (or ``force``); returns how many jobs were promoted."""
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
            count, nxt = self.broker.promote(queue, now)
            moved += count
            if nxt is not None and (earliest is None or nxt < earliest):
                earliest = nxt
        wait = MAX_PROMOTE_WAIT_S if earliest is None else (earliest - now_ms()) / 1000
        self._promote_at = time.monotonic() + min(max(wait, 0.0), MAX_PROMOTE_WAIT_S)
        if moved:
            log.info("promoted", jobs=moved)
        return moved

    def _queues(self) -> list[str]:
        return self.queues if self.queues is not None else self.broker.known_queues()

    def _read_wakeups(self) -> None:
        """A producer scheduled a job: look again no later than its due time."""
        try:
            if self._pubsub is None:
                self._pubsub = self.broker.subscribe(self.broker.keys.wakeup)
            while (message := self._pubsub.get_message(timeout=0)) is not None:
                due = (int(message["data"]) - now_ms()) / 1000
                self._promote_at = min(self._promote_at, time.monotonic() + max(due, 0.0))
        except CONNECTION_ERRORS:
            self._pubsub = None
            raise

    def reap(self, extra_live: Iterable[str] = ()) -> int:
        """Give back the leases of consumers whose worker stopped heartbeating; returns how many."""
        live = self.broker.live_workers() | set(extra_live)
        stale_ms = to_ms(self.app.settings.heartbeat_interval * 3)
        released = 0
        for queue in self.broker.known_queues():
            for consumer in self.broker.consumers(queue):
                if consumer["name"] in live:
                    continue
                if consumer["pending"]:
                    released += self._release_all(queue, consumer["name"], "lost")
                elif consumer["idle"] > stale_ms:
                    self.broker.forget_consumer(queue, consumer["name"])
        self.broker.prune_workers()
        return released

    def release_consumers(self, worker_ids: Iterable[str], mode: str) -> int:
        """Give back every lease of these consumers (a stopping worker, a child that died)."""
        ids = list(worker_ids)
        queues = self.broker.known_queues()
        return sum(self._release_all(queue, worker_id, mode) for queue in queues for worker_id in ids)

    def _release_all(self, queue: str, consumer: str, mode: str) -> int:
        released = 0
        for delivery in self.broker.pending_of(queue, consumer):
            outcome = self.broker.release(delivery, mode, error=error_record(None, "WorkerLost", "worker lost"))
            if outcome != "gone":
                released += 1
                log.warning("lease_released", job_id=delivery.job_id, queue=queue, worker=consumer,
                            mode=mode, outcome=outcome)
        self.broker.forget_consumer(queue, consumer)
        return released

    def task_of(self, delivery: Delivery) -> Task[Any, Any] | None:
        """The registered task of a leased job, if known."""
        return task_of(self.app, delivery)


def task_of(app: Resq, delivery: Delivery) -> Task[Any, Any] | None:
    """The registered task of a leased job, read from its record (None if unknown)."""
    if delivery.job_id is None:
        return None
    fields = app.broker.job_fields(delivery.queue, delivery.job_id)
    return app.tasks.get(fields.get("task", b"").decode())
