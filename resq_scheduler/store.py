"""The scheduler's Redis operations: the only module of ``resq_scheduler`` that sends Redis commands.

Every key comes from :class:`resq.keys.Keys`; the atomic steps are the Lua scripts in
``resq_scheduler/scripts`` (each documents its ``KEYS``/``ARGV``), run with EVALSHA and loaded once per
client. Queue-side work (enqueue, promote, cancel) goes through :class:`resq.broker.Broker`, so one
transition is written in one place.

Periodic entries live in three hashes/sets of the namespace's slot (``{ns}``): ``cron`` (entries added at
run time, msgpack of :meth:`PeriodicEntry.to_dict`), ``cron:last`` (last tick fired per entry, ms) and
``cron:paused``; plus one ``cron:unique:<entry>`` string per unique entry (the id of its last job).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from redis.exceptions import NoScriptError

from resq.app import Resq
from resq.broker import Broker
from resq.clock import now_ms
from resq.codec import pack, unpack
from resq.errors import ConfigError, DecodeError
from resq.keys import Keys
from resq.log import get_logger
from resq_scheduler.schedule import PeriodicEntry

__all__ = ["ACTIVE_STATUSES", "SCRIPT_NAMES", "CronState", "ScheduledJob", "Store", "load_source"]

log = get_logger("resq_scheduler.store")

#: The scheduler's own scripts under ``resq_scheduler/scripts``.
SCRIPT_NAMES = ("advance",)
#: Statuses of a job that has not finished yet (a ``unique`` entry waits for it).
ACTIVE_STATUSES = frozenset({"queued", "running", "scheduled", "retrying"})


def load_source(name: str) -> str:
    """The source of script ``name`` (``resq_scheduler/scripts/<name>.lua``)."""
    return resources.files("resq_scheduler").joinpath("scripts", f"{name}.lua").read_text(encoding="utf-8")


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


class Store:
    """Redis operations of the scheduler and of the ``resq scheduled`` / ``resq cron`` commands.

    Args:
        app: the app whose Redis and namespace to use.
    """

    def __init__(self, app: Resq) -> None:
        self.app = app
        self._shas: dict[str, str] = {}

    @property
    def broker(self) -> Broker:
        """The app's broker (queue-side operations)."""
        return self.app.broker

    @property
    def keys(self) -> Keys:
        """The app's key names."""
        return self.app.broker.keys

    @property
    def client(self) -> Any:
        """The app's Redis client (bytes replies)."""
        return self.app.broker.client

    def _script(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        for attempt in range(2):
            if not self._shas or attempt:
                self._shas = {n: self.client.script_load(load_source(n)) for n in SCRIPT_NAMES}
            try:
                return self.client.evalsha(self._shas[name], len(keys), *keys, *args)
            except NoScriptError:
                if attempt:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    # -- periodic entries -------------------------------------------------------------------------

    def save_entry(self, entry: PeriodicEntry) -> None:
        """Persist an entry added at run time and wake the schedulers so they pick it up now."""
        raw = pack(entry.to_dict())
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(self.keys.cron, entry.name, raw)
        pipe.publish(self.keys.wakeup, now_ms())
        self.broker.with_retry(pipe.execute)

    def remove_entry(self, name: str) -> bool:
        """Forget a persisted entry (and its bookkeeping); True if it was persisted."""
        k = self.keys
        pipe = self.client.pipeline(transaction=False)
        pipe.hdel(k.cron, name)
        pipe.hdel(k.cron_last, name)
        pipe.srem(k.cron_paused, name)
        pipe.delete(k.unique_lock(name))
        return bool(self.broker.with_retry(pipe.execute)[0])

    def state(self) -> CronState:
        """Persisted entries, last ticks and paused names, in one round trip."""
        k = self.keys
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(k.cron)
        pipe.hgetall(k.cron_last)
        pipe.smembers(k.cron_paused)
        raw_entries, raw_last, raw_paused = pipe.execute()
        return CronState(
            entries=_decode_entries(raw_entries),
            last={_text(name): int(tick) for name, tick in raw_last.items()},
            paused=frozenset(_text(name) for name in raw_paused),
        )

    def set_paused(self, name: str, paused: bool) -> bool:
        """Pause or resume an entry; True if that changed anything."""
        key = self.keys.cron_paused
        call = self.client.sadd if paused else self.client.srem
        return bool(self.broker.with_retry(lambda: call(key, name)))

    def advance(self, name: str, tick_ms: int, unique_job_id: str | None = None) -> bool:
        """Record ``tick_ms`` as the entry's last tick if it is newer than the stored one (compare-and-set).

        Args:
            name: the entry.
            tick_ms: the tick, in ms since the epoch.
            unique_job_id: for a ``unique`` entry, the job id to hold in its lock.

        Returns:
            True when this call moved the last tick forward.
        """
        keys = [self.keys.cron_last] + ([self.keys.unique_lock(name)] if unique_job_id else [])
        return bool(self._script("advance", keys, [name, tick_ms, unique_job_id or ""]))

    def enqueue(self, queue: str, job_id: str, task: str, envelope: bytes, *, if_absent: bool) -> bool:
        """Enqueue a job now; with ``if_absent`` only when no record of ``job_id`` exists. True if created."""
        return self.broker.enqueue(queue, job_id, task, envelope, if_absent=if_absent)[1]

    def unique_busy(self, name: str, queue: str) -> str | None:
        """The id of the entry's last job if it is still queued, scheduled, retrying or running."""
        raw = self.client.get(self.keys.unique_lock(name))
        if raw is None:
            return None
        job_id = _text(raw)
        status = self.client.hget(self.keys.job(queue, job_id), "status")
        return job_id if status is not None and _text(status) in ACTIVE_STATUSES else None

    # -- scheduled jobs ---------------------------------------------------------------------------

    def known_queues(self) -> list[str]:
        """Every queue name of the namespace."""
        return self.broker.known_queues()

    def promote(self, queue: str, now: int, limit: int) -> tuple[int, int | None]:
        """Move up to ``limit`` jobs of ``queue`` due at ``now`` (ms) into it; ``(moved, next due ms)``."""
        return self.broker.promote(queue, now, limit)

    def scheduled_jobs(self, limit: int) -> list[ScheduledJob]:
        """The ``limit`` scheduled jobs (over every queue) due soonest, soonest first."""
        queues = self.known_queues()
        pipe = self.client.pipeline(transaction=False)
        for queue in queues:
            pipe.zrange(self.keys.scheduled(queue), 0, limit - 1, withscores=True)
        rows = [(int(score), _text(job_id), queue)
                for queue, found in zip(queues, pipe.execute(), strict=True) for job_id, score in found]
        rows = sorted(rows)[:limit]
        pipe = self.client.pipeline(transaction=False)
        for _, job_id, queue in rows:
            pipe.hmget(self.keys.job(queue, job_id), "task", "status", "attempt")
        details = pipe.execute() if rows else []
        return [
            ScheduledJob(job_id, queue, due, _text(task or b"?"), _text(status or b"?"), int(attempt or 0))
            for (due, job_id, queue), (task, status, attempt) in zip(rows, details, strict=True)
        ]

    def run_now(self, queue: str, job_id: str) -> tuple[bool, str]:
        """Move a scheduled job into its queue now.

        Returns:
            ``(moved, status)``: the status after the call, or the one that prevented the move.
        """
        return self.broker.run_now(queue, job_id)

    def find_queue(self, job_id: str) -> str | None:
        """The queue holding job ``job_id``, or None."""
        return self.broker.find_queue(job_id)

    def job_status(self, queue: str, job_id: str) -> str | None:
        """A job's status, or None if unknown."""
        return self.broker.job_status(queue, job_id)

    def cancel(self, queue: str, job_id: str) -> str | None:
        """Cancel a job (removes a scheduled one from its set); the status after the call."""
        return self.broker.cancel(queue, job_id)

    # -- wake-ups ---------------------------------------------------------------------------------

    def subscribe(self) -> Any:
        """A pub/sub connection listening to the wake-up channel producers publish on."""
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(self.keys.wakeup)
        return pubsub

    @staticmethod
    def wait_wakeup(pubsub: Any, timeout_s: float) -> int | None:
        """Block up to ``timeout_s`` for a wake-up; returns its due time (ms), or None on timeout."""
        message = pubsub.get_message(timeout=max(timeout_s, 0.0))
        if message is None or message.get("type") != "message":
            return None
        try:
            return int(message["data"])
        except (TypeError, ValueError):
            return now_ms()


def _decode_entries(raw: dict[bytes, bytes]) -> dict[str, PeriodicEntry]:
    entries: dict[str, PeriodicEntry] = {}
    for name, value in raw.items():
        try:
            entry = PeriodicEntry.from_dict(unpack(value))
        except (ConfigError, DecodeError, TypeError, AttributeError) as exc:
            log.warning("cron_entry_unreadable", entry=_text(name), error=str(exc))
            continue
        entries[entry.name] = entry
    return entries


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
