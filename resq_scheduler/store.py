"""The scheduler's own Redis state: periodic entries, their last ticks, pauses and unique locks.

A :class:`Store` is a part of the app's broker (:class:`resq.broker.connection.Part`): it sends its
commands through the broker's connection, loads its script (``resq_scheduler/lua/last_tick.lua``) with the
broker's loader, and its errors leave it as resq's own. Everything about queues and jobs (promotion,
finding a job, cancelling, the scheduled sets) is asked of the broker's other parts.

Periodic entries live in three hashes/sets of the namespace's slot (``{ns}``): ``cron`` (entries added at
run time, msgpack of :meth:`PeriodicEntry.to_dict`), ``cron:last`` (last tick fired per entry, ms) and
``cron:paused``; plus one ``cron:unique:<entry>`` string per unique entry (the id of its last job).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from resq.app import Resq
from resq.broker import ScriptSource
from resq.broker.connection import Part, Pipeline, publish, text
from resq.clock import now_ms
from resq.codec import pack, unpack
from resq.errors import ConfigError, DecodeError
from resq.job import ACTIVE_STATUSES
from resq.log import get_logger
from resq_scheduler.schedule import PeriodicEntry

__all__ = ["SCRIPT_NAMES", "CronState", "ScheduledJob", "Store"]

log = get_logger("resq_scheduler.store")

#: The scheduler's own scripts under ``resq_scheduler/lua``.
SCRIPT_NAMES = ("last_tick",)


@dataclass(frozen=True)
class CronState:
    """What Redis knows about periodic entries, read in one round trip."""

    #: entries added at run time (``add_periodic``), by name
    entries: dict[str, PeriodicEntry] = field(default_factory=dict)
    #: last tick fired (ms since the epoch), by entry name
    last: dict[str, int] = field(default_factory=dict)
    #: names of paused entries
    paused: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ScheduledJob:
    """One job waiting in a scheduled set (a delayed job or a retry)."""

    job_id: str
    queue: str
    due_ms: int
    task: str
    status: str
    attempt: int


class Store(Part):
    """Redis state of the scheduler and of the ``resq cron`` commands.

    Args:
        app: the app whose broker (connection, keys) to use.
    """

    def __init__(self, app: Resq) -> None:
        self.app = app
        self.broker = app.broker
        super().__init__(self.broker.connection, self.broker.keys)
        self.broker.connection.add_scripts(ScriptSource("resq_scheduler", SCRIPT_NAMES))

    def save_entry(self, entry: PeriodicEntry) -> None:
        """Persist an entry added at run time and wake the schedulers so they pick it up now."""
        raw = pack(entry.to_dict())

        def build(pipe: Pipeline) -> None:
            pipe.hset(self.keys.cron, entry.name, raw)
            publish(pipe, self.keys.wakeup, now_ms())

        self.connection.with_retry(lambda: self.connection.pipeline(build))

    def remove_entry(self, name: str) -> bool:
        """Forget a persisted entry (and its bookkeeping); True if it was persisted."""
        k = self.keys

        def build(pipe: Pipeline) -> None:
            pipe.hdel(k.cron, name)
            pipe.hdel(k.cron_last, name)
            pipe.srem(k.cron_paused, name)
            pipe.delete(k.unique_lock(name))

        return bool(self.connection.with_retry(lambda: self.connection.pipeline(build))[0])

    def state(self) -> CronState:
        """Persisted entries, last ticks and paused names, in one round trip."""
        k = self.keys

        def build(pipe: Pipeline) -> None:
            pipe.hgetall(k.cron)
            pipe.hgetall(k.cron_last)
            pipe.smembers(k.cron_paused)

        raw_entries, raw_last, raw_paused = self.connection.pipeline(build)
        return CronState(
            entries=_decode_entries(raw_entries),
            last={text(name): int(tick) for name, tick in raw_last.items()},
            paused=frozenset(text(name) for name in raw_paused),
        )

    def set_paused(self, name: str, paused: bool) -> bool:
        """Pause or resume an entry; True if that changed anything."""
        key = self.keys.cron_paused
        call = self._redis.sadd if paused else self._redis.srem
        return bool(self.connection.with_retry(lambda: call(key, name)))

    def move_last_tick(self, name: str, tick_ms: int, unique_job_id: str | None = None) -> bool:
        """Record ``tick_ms`` as the entry's last tick if it is newer than the stored one (compare-and-set).

        Args:
            name: the entry.
            tick_ms: the tick, in ms since the epoch.
            unique_job_id: for a ``unique`` entry, the job id to hold in its lock.

        Returns:
            True when this call moved the last tick forward.
        """
        keys = [self.keys.cron_last] + ([self.keys.unique_lock(name)] if unique_job_id else [])
        return bool(self.connection.script("last_tick", keys, [name, tick_ms, unique_job_id or ""]))

    def unique_busy(self, name: str, queue: str) -> str | None:
        """The id of the entry's last job if it is still queued, scheduled, retrying or running."""
        raw = self._redis.get(self.keys.unique_lock(name))
        if raw is None:
            return None
        job_id = text(raw)
        return job_id if self.broker.jobs.status(queue, job_id) in ACTIVE_STATUSES else None

    def scheduled_jobs(self, limit: int) -> list[ScheduledJob]:
        """The ``limit`` scheduled jobs (over every queue) due soonest, soonest first."""
        rows = self.broker.admin.scheduled(self.broker.queues.known(), limit)
        details = self.broker.jobs.summaries(
            [(queue, job_id) for _, job_id, queue in rows], ("task", "status", "attempt")
        )
        return [
            ScheduledJob(job_id, queue, due, text(task or b"?"), text(status or b"?"), int(attempt or 0))
            for (due, job_id, queue), (task, status, attempt) in zip(rows, details, strict=True)
        ]


def _decode_entries(raw: dict[bytes, bytes]) -> dict[str, PeriodicEntry]:
    entries: dict[str, PeriodicEntry] = {}
    for name, value in raw.items():
        try:
            entry = PeriodicEntry.from_dict(unpack(value))
        except (ConfigError, DecodeError, TypeError, AttributeError) as exc:
            log.warning("cron_entry_unreadable", entry=text(name), error=str(exc))
            continue
        entries[entry.name] = entry
    return entries
