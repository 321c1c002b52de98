"""The admin (read and repair) side of resq: what ``resq stats``, ``resq dead …`` and the metrics
endpoint show and do.

Besides :mod:`resq.broker`, this is the only module of ``resq`` that sends Redis commands. It reads
the structures the broker and its Lua scripts keep (streams and their consumer group, scheduled and
dead sets, per-day counters, the workers registry) and offers the operator's bulk actions, each in
batched pipelines so that they stay fast on 100k jobs.

Example::

    from resq.inspect import Inspector

    inspector = Inspector(app)
    for queue in inspector.queues():
        print(queue.name, queue.waiting, queue.oldest_age_s)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgpack
from redis.exceptions import ResponseError

from resq.app import Resq
from resq.broker import CONNECTION_ERRORS, GROUP, Broker
from resq.clock import due_time_ms, now_ms, to_ms
from resq.codec import Envelope, decode_event, encode_envelope, unpack
from resq.errors import DecodeError, UnknownJob
from resq.inspect_records import CONTROL_COMMANDS, DeadJob, QueueInfo, WorkerInfo, control_message, to_json
from resq.job import Job, new_job_id
from resq.keys import validate_name

__all__ = [
    "BATCH", "CONTROL_COMMANDS", "COUNTERS", "DeadJob", "Inspector", "QueueInfo", "WorkerInfo", "control_message",
    "to_json",
]

#: Counters kept per day and in total (``Keys.stat``).
COUNTERS = ("processed", "failed", "retried", "dead", "cancelled")
#: Ids handled per pipelined round trip by the bulk actions.
BATCH = 1000

# Remove dead ids (ARGV[4..]) from the dead set and, for those that were still there, their job hash,
# done list and history list (keys built from prefixes share the queue's hash tag: one slot).
class Inspector:
    """Reads and repairs what one app keeps in Redis.

    Args:
        app: the app (its settings and namespace).
        broker: the broker to use (default: the app's; the metrics server passes its own).
    """

    def __init__(self, app: Resq, broker: Broker | None = None) -> None:
        self.app = app
        self.broker = broker or app.broker
        self.keys = self.broker.keys

    @property
    def _redis(self) -> Any:
        return self.broker.client

    # -- queues -----------------------------------------------------------------------------------

    def queue_names(self) -> list[str]:
        """Every queue known in this namespace, sorted."""
        return self.broker.with_retry(self.broker.known_queues)

    def queues(self) -> list[QueueInfo]:
        """Each known queue: waiting, running, age of the oldest waiting job, scheduled, dead, workers."""
        names = self.queue_names()
        if not names:
            return []
        serving = self._serving_counts()
        pipe = self._redis.pipeline(transaction=False)
        for name in names:
            pipe.xlen(self.keys.queue(name))
            pipe.zcard(self.keys.scheduled(name))
            pipe.zcard(self.keys.dead(name))
        sizes = pipe.execute()
        now = now_ms()
        found = []
        for i, name in enumerate(names):
            length, scheduled, dead = sizes[3 * i: 3 * i + 3]
            running, oldest_ms = self._group_state(name)
            found.append(QueueInfo(
                name=name, waiting=max(0, int(length) - running), running=running,
                oldest_age_s=None if oldest_ms is None else max(0.0, (now - oldest_ms) / 1000),
                scheduled=int(scheduled), dead=int(dead), workers=serving.get(name, 0),
            ))
        return found

    def _group_state(self, queue: str) -> tuple[int, int | None]:
        """``(pending, time the oldest undelivered entry was added in ms or None)`` of a queue."""
        stream = self.keys.queue(queue)
        try:
            groups = self._redis.xinfo_groups(stream)
        except ResponseError:  # no stream yet
            return 0, None
        group = next((g for g in groups if _text(g["name"]) == GROUP), None)
        if group is None:
            start, pending = "-", 0
        else:
            start, pending = "(" + _text(group["last-delivered-id"]), int(group["pending"])
        first = self._redis.xrange(stream, start, "+", count=1)
        return pending, (_entry_ms(first[0][0]) if first else None)

    def _serving_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for worker in self.workers():
            for queue in worker.queues:
                counts[queue] = counts.get(queue, 0) + 1
        return counts

    def clear_queue(self, queue: str) -> int:
        """Delete a queue's stream and scheduled set and the records of the jobs they held.

        Running jobs lose their records too (their workers' outcomes then change nothing). The
        consumer group goes with the stream; workers recreate it. Dead jobs are kept.

        Returns:
            How many jobs were removed.
        """
        validate_name(queue, "queue name")
        k = self.keys
        removed = 0
        while entries := self._redis.xrange(k.queue(queue), "-", "+", count=BATCH):
            ids = [_text(f[b"id"]) for _, f in entries if b"id" in f]
            self._drop_jobs(queue, ids, lambda pipe: pipe.xdel(k.queue(queue), *[e for e, _ in entries]))
            removed += len(ids)
        while members := self._redis.zrange(k.scheduled(queue), 0, BATCH - 1):
            ids = [_text(m) for m in members]
            self._drop_jobs(queue, ids, lambda pipe: pipe.zrem(k.scheduled(queue), *members))
            removed += len(ids)
        self._redis.delete(k.queue(queue), k.scheduled(queue))
        return removed

    def _drop_jobs(self, queue: str, ids: Sequence[str], also: Callable[[Any], Any]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        also(pipe)
        k = self.keys
        for job_id in ids:
            pipe.delete(k.job(queue, job_id), k.done(queue, job_id), k.history(queue, job_id))
        pipe.execute()

    # -- workers ----------------------------------------------------------------------------------

    def workers(self) -> list[WorkerInfo]:
        """The live workers (heartbeat within three of their intervals), by supervisor then id."""
        ids = sorted(self.broker.live_workers())
        if not ids:
            return []
        found = []
        for worker_id, row in zip(ids, self.broker.worker_info(ids), strict=True):
            if not row:
                continue  # expired between the two reads
            found.append(WorkerInfo(
                id=worker_id, host=row.get("host", ""), pid=_int(row.get("pid")),
                supervisor=row.get("supervisor", ""), queues=_split(row.get("queues", "")),
                started_ms=_int(row.get("started_ms")), heartbeat_ms=_int(row.get("heartbeat_ms")),
                current=_split(row.get("current", "")),
            ))
        return sorted(found, key=lambda w: (w.supervisor, w.id))

    def control(self, cmd: str, target: str = "*") -> int:
        """Send ``pause``, ``resume`` or ``stop`` to every worker (``*``) or one worker or supervisor.

        The command is published on ``Keys.control`` and recorded in the hash ``Keys.control_state``
        (target -> msgpack ``{"cmd", "at_ms"}``), so a supervisor that was not listening still applies it.

        Returns:
            How many subscribers received the message.

        Raises:
            ConfigError: an unknown command.
        """
        message = control_message(cmd, target)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(self.keys.control_state, target,
                  msgpack.packb({"cmd": message["cmd"], "at_ms": message["at_ms"]}))
        pipe.publish(self.keys.control, msgpack.packb(message))
        return int(pipe.execute()[1])

    def control_targets(self) -> set[str]:
        """Every id a control command may name: live workers and their supervisors."""
        workers = self.workers()
        return {w.id for w in workers} | {w.supervisor for w in workers if w.supervisor}

    # -- statistics -------------------------------------------------------------------------------

    def stats(self, days: int = 7) -> dict[str, Any]:
        """Counters today and in total, and per day for the last ``days`` days (newest first).

        Returns:
            ``{"today": {name: n}, "total": {name: n}, "days": [{"day": "YYYY-MM-DD", name: n, …}]}``
            with names from :data:`COUNTERS`.
        """
        today = datetime.now(UTC).date()
        span = [today - timedelta(days=i) for i in range(max(days, 1))]
        keys = [self.keys.stat(name) for name in COUNTERS]
        keys += [self.keys.stat(name, day) for day in span for name in COUNTERS]
        values = [_int(v) for v in self._redis.mget(keys)]
        total = dict(zip(COUNTERS, values[: len(COUNTERS)], strict=True))
        per_day = [
            {"day": day.isoformat(), **dict(zip(COUNTERS, values[len(COUNTERS) * (i + 1): len(COUNTERS) * (i + 2)],
                                                strict=True))}
            for i, day in enumerate(span)
        ]
        return {"today": {k: v for k, v in per_day[0].items() if k != "day"}, "total": total,
                "days": per_day[:days]}

    def task_counters(self) -> dict[tuple[str, str, str], int]:
        """Counters by ``(task, queue, counter)`` (``Keys.stat_by_task``)."""
        found = {}
        for raw_key, value in self._redis.hgetall(self.keys.stat_by_task).items():
            parts = _text(raw_key).rsplit("|", 2)
            if len(parts) == 3:
                found[(parts[0], parts[1], parts[2])] = _int(value)
        return found

    def durations(self) -> dict[str, dict[str, int]]:
        """The duration histogram by task: ``{task: {bucket bound ms or "+Inf": n, "sum_ms": s, "count": c}}``
        (buckets are not cumulative)."""
        found: dict[str, dict[str, int]] = {}
        for raw_key, value in self._redis.hgetall(self.keys.stat_durations).items():
            task, _, bucket = _text(raw_key).rpartition("|")
            found.setdefault(task, {})[bucket] = _int(value)
        return found

    def live_worker_count(self) -> int:
        """How many workers have a fresh heartbeat."""
        return int(self._redis.zcount(self.keys.workers, now_ms(), "+inf"))

    # -- jobs -------------------------------------------------------------------------------------

    def job_info(self, job_id: str) -> dict[str, Any]:
        """Everything recorded about a job, with its history (see :meth:`resq.Job.info`).

        Raises:
            UnknownJob: no such job (or its record expired).
        """
        return Job(self.app, job_id).info()

    def enqueue(self, task: str, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None, *,
                queue: str | None = None, delay: float | None = None, at: datetime | None = None,
                job_id: str | None = None) -> tuple[str, str, str]:
        """Enqueue a job by task name, without importing the task.

        A task this app registers goes through ``Task.apply_async`` (its queue, its ``before_enqueue``
        hooks); any other name is sent as is and the worker decides (an unknown name ends dead).

        Returns:
            ``(job id, queue, status)``.

        Raises:
            ConfigError: an invalid queue name, both ``delay`` and ``at``, a naive ``at``.
        """
        known = self.app.tasks.get(task)
        if known is not None:
            job = known.apply_async(list(args), kwargs, queue=queue, delay=delay, at=at, job_id=job_id)
            return job.id, job.queue, str(job.status())
        target = validate_name(queue or "default", "queue name")
        due_ms = due_time_ms(delay, at)
        envelope = Envelope(id=job_id or new_job_id(), task=task, queue=target, args=list(args),
                            kwargs=dict(kwargs or {}), created_ms=now_ms())
        raw = encode_envelope(envelope, self.app.settings.max_payload_bytes)
        status, _ = self.broker.enqueue(target, envelope.id, task, raw, due_ms)
        return envelope.id, target, status

    # -- dead jobs --------------------------------------------------------------------------------

    def dead_count(self, queue: str | None = None) -> int:
        """How many dead jobs there are (in one queue, or in all)."""
        names = [queue] if queue else self.queue_names()
        pipe = self._redis.pipeline(transaction=False)
        for name in names:
            pipe.zcard(self.keys.dead(name))
        return sum(int(n) for n in pipe.execute())

    def dead(self, limit: int = 50, queue: str | None = None) -> list[DeadJob]:
        """The most recent dead jobs (in one queue, or across all), newest first."""
        names = [queue] if queue else self.queue_names()
        rows = [(died, name, job_id) for name in names for job_id, died in self.broker.dead_ids(name, 0, limit - 1)]
        rows = sorted(rows, reverse=True)[:limit]
        pipe = self._redis.pipeline(transaction=False)
        for _, name, job_id in rows:
            pipe.hmget(self.keys.job(name, job_id), "task", "error")
        details = pipe.execute() if rows else []
        return [
            DeadJob(job_id, name, _text(task or b""), died, _error_text(error))
            for (died, name, job_id), (task, error) in zip(rows, details, strict=True)
        ]

    def dead_queue_of(self, job_id: str) -> str | None:
        """The queue whose dead set holds ``job_id``, or None."""
        names = self.queue_names()
        pipe = self._redis.pipeline(transaction=False)
        for name in names:
            pipe.zscore(self.keys.dead(name), job_id)
        return next((n for n, score in zip(names, pipe.execute(), strict=True) if score is not None), None)

    def retry_dead(self, job_id: str) -> str:
        """Queue one dead job again for a fresh series of attempts.

        Returns:
            The queue it went back to.

        Raises:
            UnknownJob: ``job_id`` is in no dead set (or its record is gone).
        """
        queue = self.dead_queue_of(job_id)
        if queue is None or not self.broker.revive(queue, job_id):
            raise UnknownJob(f"no dead job with id {job_id!r}")
        return queue

    def retry_all_dead(self, queue: str | None = None, progress: Callable[[int], None] | None = None) -> int:
        """Queue every dead job (of one queue, or of all) again, :data:`BATCH` per round trip.

        Jobs that die while this runs are left alone (only deaths before the call are revived).

        Args:
            queue: only this queue's dead jobs.
            progress: called with the number of jobs handled after each batch.

        Returns:
            How many jobs were queued again.
        """
        return self._each_dead_batch(now_ms(), queue, self.broker.revive_many, progress)

    def purge_dead(self, older_than_s: float | None = None, queue: str | None = None,
                   progress: Callable[[int], None] | None = None) -> int:
        """Delete dead jobs (all, or those dead for more than ``older_than_s`` seconds) and their records.

        Returns:
            How many dead jobs were deleted.
        """
        until = now_ms() - (to_ms(older_than_s) if older_than_s else 0)
        return self._each_dead_batch(until, queue, self.broker.purge_dead, progress)

    def _each_dead_batch(self, until_ms: int, queue: str | None, act: Callable[[str, list[str]], int],
                         progress: Callable[[int], None] | None) -> int:
        """Apply ``act(queue, ids)`` to the jobs dead since before ``until_ms``, :data:`BATCH` at a time.

        ``act`` must take the ids out of the dead set (revive and purge both do), so the loop ends.
        """
        done = 0
        for name in [queue] if queue else self.queue_names():
            while ids := [_text(i) for i in self._redis.zrangebyscore(
                    self.keys.dead(name), "-inf", until_ms, start=0, num=BATCH)]:
                done += act(name, ids)
                if progress is not None:
                    progress(len(ids))
        return done

    # -- live events ------------------------------------------------------------------------------

    def events(self, poll_s: float = 1.0) -> Iterator[dict[str, Any] | None]:
        """Follow the lifecycle events every worker publishes (``Keys.events``), decoded.

        Yields None after ``poll_s`` seconds without an event, so callers can check for a stop. A lost
        connection is retried (events published meanwhile are missed: pub/sub keeps no backlog).
        """
        pubsub = None
        while True:
            try:
                if pubsub is None:
                    pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(self.keys.events)
                message = pubsub.get_message(timeout=poll_s)
            except CONNECTION_ERRORS:
                pubsub = None
                time.sleep(min(poll_s, 0.5))
                yield None
                continue
            yield None if message is None else decode_event(message["data"])


def _error_text(raw: bytes | None) -> str:
    if not raw:
        return ""
    try:
        value = unpack(raw)
    except DecodeError:
        return "(undecodable error record)"
    if isinstance(value, dict):
        return f"{value.get('type', '?')}: {value.get('message', '')}"
    return str(value)


def _entry_ms(entry: bytes | str) -> int:
    return int(_text(entry).split("-", 1)[0])


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _split(value: str) -> list[str]:
    return [part for part in value.split(",") if part]


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
