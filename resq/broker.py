"""The queue operations resq is made of, and the only module of ``resq`` that sends Redis commands.

Everything above it deals in job ids, queue names and encoded bytes. Each state transition is one Lua
script (``resq/scripts``) run with EVALSHA; per-job writes of a batch are folded into one pipelined
round trip, because round trips, not Python, are the budget of a job queue.

Queues are Redis streams read through one consumer group (``GROUP``): the group's pending-entries list
is the lease a worker holds while it runs a job, so a job never leaves Redis before its outcome is
recorded, and the jobs of a worker that died are found and given back (see ``docs/design.md``).
"""

from __future__ import annotations

import contextlib
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.client import Pipeline
from redis.exceptions import NoScriptError, ResponseError
from redis.retry import Retry as RedisRetry

from resq.clock import now_ms, to_ms
from resq.codec import decode_event
from resq.errors import BrokerUnavailable
from resq.keys import Keys
from resq.outcomes import Buried, Cancelled, Delivery, Discarded, Outcome, Retried, Started, Succeeded
from resq.scripts import load_source
from resq.settings import Settings
from resq.workers_registry import WorkerRegistry, _text

__all__ = [
    "DURATION_BUCKETS_MS",
    "GROUP",
    "SCRIPT_NAMES",
    "Broker",
    "Buried",
    "Cancelled",
    "Delivery",
    "Discarded",
    "Outcome",
    "Retried",
    "Started",
    "Succeeded",
]

#: The consumer group every worker reads queues through.
GROUP = "resq"
#: Every transition script under ``resq/scripts``.
SCRIPT_NAMES = (
    "enqueue", "start", "succeed", "retry", "bury", "promote", "run_now", "release", "cancel", "cancelled",
    "revive", "purge",
)
#: Upper bounds of the job duration histogram, in milliseconds.
DURATION_BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 300_000)
#: Errors that mean "Redis is not there right now".
CONNECTION_ERRORS: tuple[type[Exception], ...] = (redis.ConnectionError, redis.TimeoutError)
#: Upper bound of one blocking call, in seconds; longer waits are made of several (keeps the socket
#: timeout meaningful, so a Redis that stops answering is noticed).
MAX_BLOCK_S = 2.0

T = TypeVar("T")


class Broker(WorkerRegistry):
    """Redis-side operations on queues, jobs and workers for one app.

    Args:
        settings: the app's settings (url, namespace, limits, timeouts).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = Keys(settings.namespace)
        self._client: redis.Redis | None = None
        self._shas: dict[str, str] = {}

    # -- connection -------------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The Redis client, created on first use (never at import or decoration time).

        Typed ``Any``: redis-py types replies as unions over its decoding modes, and this module always
        reads bytes and decodes them itself.
        """
        if self._client is None:
            self._client = redis.Redis.from_url(
                self.settings.url,
                socket_connect_timeout=self.settings.connect_timeout,
                socket_timeout=self.settings.socket_timeout,
                socket_keepalive=True,
                health_check_interval=30,
                retry=RedisRetry(NoBackoff(), 0),
            )
        return self._client

    def close(self) -> None:
        """Close the connections of this process (a new pool is made on next use)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def reset_after_fork(self) -> None:
        """Forget connections inherited from a parent process without closing the parent's sockets."""
        self._client = None

    def with_retry(self, operation: Callable[[], T], deadline_s: float | None = None) -> T:
        """Run ``operation``, retrying a lost connection with capped, jittered backoff.

        Raises:
            BrokerUnavailable: Redis did not answer within ``deadline_s`` (default ``broker_retry_s``).
        """
        limit = time.monotonic() + (self.settings.broker_retry_s if deadline_s is None else deadline_s)
        delay = 0.05
        while True:
            try:
                return operation()
            except CONNECTION_ERRORS as exc:
                if time.monotonic() + delay > limit:
                    raise BrokerUnavailable(
                        f"Redis at {self._safe_url()} is unavailable: {exc} (gave up after retrying)"
                    ) from exc
                time.sleep(random.uniform(delay / 2, delay))
                delay = min(delay * 2, 1.0)

    def _safe_url(self) -> str:
        url = self.settings.url
        if "@" in url:
            scheme, _, rest = url.partition("://")
            url = f"{scheme}://***@{rest.split('@', 1)[1]}"
        return url

    # -- scripts ----------------------------------------------------------------------------------

    def _load_scripts(self) -> None:
        """Load every script in one round trip (again after Redis restarted and forgot them)."""
        pipe = self.client.pipeline(transaction=False)
        for name in SCRIPT_NAMES:
            pipe.script_load(load_source(name))
        self._shas = dict(zip(SCRIPT_NAMES, (_text(sha) for sha in pipe.execute()), strict=True))

    def _eval(self, target: redis.Redis | Pipeline, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        if not self._shas:
            self._load_scripts()
        return target.evalsha(self._shas[name], len(keys), *keys, *args)

    def _script(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return self._eval(self.client, name, keys, args)
        except NoScriptError:
            self._load_scripts()  # Redis restarted or was flushed: load once more
            return self._eval(self.client, name, keys, args)

    def _pipeline(self, build: Callable[[Pipeline], None]) -> list[Any]:
        """Run the commands ``build`` adds in one round trip; reload scripts once if Redis lost them."""
        if not self._shas:
            self._load_scripts()
        for _ in range(2):
            pipe = self.client.pipeline(transaction=False)
            build(pipe)
            results = pipe.execute(raise_on_error=False)
            if not any(isinstance(r, NoScriptError) for r in results):
                break
            self._load_scripts()
        for result in results:
            if isinstance(result, Exception):
                raise result
        return list(results)

    # -- producing --------------------------------------------------------------------------------

    def enqueue(
        self, queue: str, job_id: str, task: str, envelope: bytes, due_ms: int = 0, *, if_absent: bool = False
    ) -> tuple[str, bool]:
        """Store a job and queue it (or schedule it when ``due_ms`` is in the future).

        Args:
            if_absent: create the job only if no record of ``job_id`` exists at all, even a finished one
                (how a cron tick with a deterministic id is fired at most once).

        Returns:
            ``(status, created)``: ``created`` is False when a live job with this id already existed
            (with ``if_absent``: when any record existed).
        """
        keys = self.keys

        def build(pipe: Pipeline) -> None:
            pipe.sadd(keys.queues, queue)
            self._eval(
                pipe, "enqueue",
                [keys.job(queue, job_id), keys.queue(queue), keys.scheduled(queue), keys.history(queue, job_id)],
                [job_id, envelope, now_ms(), due_ms, task, queue, keys.events, *(["nx"] if if_absent else [])],
            )
            if due_ms:
                pipe.publish(keys.wakeup, due_ms)

        status, created = self.with_retry(lambda: self._pipeline(build))[1]
        return status.decode(), bool(created)

    # -- consuming --------------------------------------------------------------------------------

    def ensure_groups(self, queues: Iterable[str]) -> None:
        """Create the consumer group of each queue (and its stream) if missing."""
        for queue in queues:
            self.client.sadd(self.keys.queues, queue)
            try:
                self.client.xgroup_create(self.keys.queue(queue), GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def fetch(self, consumer: str, queues: Sequence[str], count: int, block_s: float | None) -> list[Delivery]:
        """Lease up to ``count`` new entries, blocking up to ``block_s`` (None: not at all).

        Strict priority: the queues are tried in order without blocking and the first that has
        entries wins; only when all are empty does one blocking read wait on all of them at once.
        """
        if len(queues) > 1:
            for queue in queues:
                found = self._read(consumer, [queue], count, None)
                if found:
                    return found
            if block_s is None:
                return []
        block = None if block_s is None else max(1, int(min(block_s, MAX_BLOCK_S) * 1000))
        return self._read(consumer, queues, count, block)

    def _read(self, consumer: str, queues: Sequence[str], count: int, block_ms: int | None) -> list[Delivery]:
        by_key = {self.keys.queue(q): q for q in queues}
        try:
            reply = self.client.xreadgroup(GROUP, consumer, dict.fromkeys(by_key, ">"), count=count, block=block_ms)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self.ensure_groups(queues)  # a queue was cleared (its stream deleted): recreate and go on
            return []
        found: dict[str, list[Delivery]] = {}
        for stream, entries in reply or []:
            queue = by_key[stream.decode()]
            found[queue] = [self._delivery(queue, entry, fields) for entry, fields in entries]
        return [d for q in queues for d in found.get(q, [])]

    @staticmethod
    def _delivery(queue: str, entry: bytes, fields: dict[bytes, bytes] | None) -> Delivery:
        fields = fields or {}
        raw_id = fields.get(b"id")
        job_id = raw_id.decode("utf-8", "replace") if raw_id and len(fields) == 1 else None
        return Delivery(queue, entry.decode(), job_id, fields)

    def advance(self, worker_id: str, outcomes: Sequence[Outcome], start: Delivery | None = None, *,
                counted: Sequence[Outcome] | None = None) -> Started | None:
        """Record finished outcomes and start the next attempt, in one round trip.

        Folding the previous job's bookkeeping (result or error, ack) into the start of the next costs
        one round trip per job, while the job that runs is the only one marked ``running``.

        Args:
            worker_id: the consumer the lease belongs to.
            outcomes: outcomes to record (results, retries, deaths, cancellations, discards).
            start: the delivery whose attempt begins now, if any.
            counted: outcomes whose counters to add now (default: ``outcomes``). A worker passes none
                while it works through a batch and all of them at its end, so a batch adds each counter
                once instead of once per job (counters are advisory: a crash may lose some, never a job).

        Returns:
            What to run for ``start`` (None when no start was asked).
        """
        now = now_ms()

        def build(pipe: Pipeline) -> None:
            self._add_outcomes(pipe, outcomes, now)
            self._add_counters(pipe, outcomes if counted is None else counted)
            current = str(start.job_id) if start is not None and start.job_id else ""
            pipe.hset(self.keys.worker(worker_id), "current", current)
            if start is not None and start.job_id is not None:
                k, q = self.keys, start.queue
                self._eval(pipe, "start", [k.job(q, start.job_id), k.history(q, start.job_id)],
                           [worker_id, now, start.entry, start.job_id, k.events])

        replies = self._pipeline(build)
        if start is None:
            return None
        if start.job_id is None:
            return Started(start, None, 0, "garbage")
        envelope, attempt, status = replies[-1]
        return Started(start, envelope or None, int(attempt), status.decode())

    def settle(self, outcomes: Sequence[Outcome]) -> None:
        """Record outcomes (results, retries, deaths, counters) in one round trip."""
        if not outcomes:
            return

        def build(pipe: Pipeline) -> None:
            self._add_outcomes(pipe, outcomes, now_ms())
            self._add_counters(pipe, outcomes)

        self._pipeline(build)

    def _add_outcomes(self, pipe: Pipeline, outcomes: Sequence[Outcome], now: int) -> None:
        for outcome in outcomes:
            self._add_outcome(pipe, outcome, now)
            if isinstance(outcome, Succeeded | Retried | Buried):
                # a cancellation asked for while the job was finishing on its own must not linger
                pipe.srem(self.keys.cancel_requests(outcome.delivery.queue), outcome.job_id)

    def _add_counters(self, pipe: Pipeline, outcomes: Sequence[Outcome]) -> None:
        """Totals and per-day counters, counters by task and queue, and the duration histogram by task
        (read by ``resq stats`` and the metrics endpoint), each summed over ``outcomes`` first."""
        totals: Counter[str] = Counter()
        by_task: Counter[str] = Counter()
        durations: Counter[str] = Counter()
        for outcome in outcomes:
            names = _counter_names(outcome)
            if isinstance(outcome, Discarded) or not names:
                continue
            task = outcome.task or "?"
            totals.update(names)
            by_task.update(f"{task}|{outcome.delivery.queue}|{name}" for name in names)
            duration = getattr(outcome, "duration_ms", None)
            if duration is not None and "processed" in names:
                bucket = next((str(b) for b in DURATION_BUCKETS_MS if duration <= b), "+Inf")
                durations.update({f"{task}|{bucket}": 1, f"{task}|sum_ms": duration, f"{task}|count": 1})
        today = datetime.now(UTC).date()
        keep_s = int(timedelta(days=self.settings.stats_days).total_seconds())
        for name, n in totals.items():
            pipe.incrby(self.keys.stat(name), n)
            pipe.incrby(self.keys.stat(name, today), n)
            pipe.expire(self.keys.stat(name, today), keep_s)
        for field, n in by_task.items():
            pipe.hincrby(self.keys.stat_by_task, field, n)
        for field, n in durations.items():
            pipe.hincrby(self.keys.stat_durations, field, n)

    def _add_outcome(self, pipe: Pipeline, outcome: Outcome, now: int) -> None:
        k, d, s = self.keys, outcome.delivery, self.settings
        q, job_id = d.queue, outcome.job_id
        if isinstance(outcome, Discarded):
            pipe.xack(k.queue(q), GROUP, d.entry)
            pipe.xdel(k.queue(q), d.entry)
            return
        if isinstance(outcome, Succeeded):
            self._eval(pipe, "succeed", [k.queue(q), k.job(q, job_id), k.done(q, job_id), k.history(q, job_id)],
                       [GROUP, d.entry, outcome.result, now, outcome.ttl_ms, outcome.duration_ms, job_id, k.events])
            return
        if isinstance(outcome, Retried):
            self._eval(pipe, "retry", [k.queue(q), k.job(q, job_id), k.scheduled(q), k.history(q, job_id)],
                       [GROUP, d.entry, outcome.error, now, outcome.due_ms, job_id, outcome.duration_ms, k.events])
            pipe.publish(k.wakeup, outcome.due_ms)
            return
        if isinstance(outcome, Buried):
            self._eval(pipe, "bury",
                       [k.queue(q), k.job(q, job_id), k.dead(q), k.done(q, job_id), k.history(q, job_id)],
                       [GROUP, d.entry, outcome.error, now, job_id, to_ms(s.dead_ttl), s.dead_max_jobs,
                        k.job_prefix(q), k.done_prefix(q), outcome.raw, outcome.duration_ms, k.history_prefix(q),
                        k.events, "1" if outcome.failed_attempt else "0"])
            return
        self._eval(pipe, "cancelled",
                   [k.queue(q), k.job(q, job_id), k.done(q, job_id), k.cancel_requests(q), k.history(q, job_id)],
                   [GROUP, d.entry, job_id, now, to_ms(s.result_ttl), outcome.reason, k.events])

    def cancel_requested(self, queue: str, job_ids: Sequence[str]) -> set[str]:
        """Which of ``job_ids`` (running in ``queue``) someone asked to cancel."""
        if not job_ids:
            return set()
        flags = self.client.smismember(self.keys.cancel_requests(queue), list(job_ids))
        return {job_id for job_id, flag in zip(job_ids, flags, strict=True) if flag}

    def release(self, delivery: Delivery, mode: str, error: bytes = b"") -> str:
        """Give a leased entry back to its queue.

        Args:
            delivery: the lease.
            mode: ``"returned"`` (handed back: the attempt does not count) or ``"lost"`` (its worker
                died: counts towards ``max_worker_losses``, after which the job is dead).
            error: the encoded error stored if the job goes dead.

        Returns:
            ``queued``, ``dead``, or ``gone`` when it was no longer leased.
        """
        k, s, q = self.keys, self.settings, delivery.queue
        if delivery.job_id is None:
            return "gone"
        job_id = delivery.job_id
        result = self._script(
            "release", [k.queue(q), k.job(q, job_id), k.dead(q), k.done(q, job_id), k.history(q, job_id)],
            [GROUP, delivery.entry, job_id, now_ms(), mode, s.max_worker_losses, error,
             to_ms(s.dead_ttl), s.dead_max_jobs, k.job_prefix(q), k.done_prefix(q), k.history_prefix(q), k.events],
        )
        return str(result.decode())

    def pending_of(self, queue: str, consumer: str, limit: int = 1000) -> list[Delivery]:
        """The entries of ``queue`` leased by ``consumer``."""
        stream = self.keys.queue(queue)
        try:
            pending = self.client.xpending_range(stream, GROUP, "-", "+", limit, consumername=consumer)
        except ResponseError:
            return []
        deliveries = []
        for item in pending:
            entry = item["message_id"]
            found = self.client.xrange(stream, entry, entry)
            fields = found[0][1] if found else {}
            deliveries.append(self._delivery(queue, entry, fields))
        return deliveries

    def consumers(self, queue: str) -> list[dict[str, Any]]:
        """The consumers of a queue's group with their pending count and idle time (ms)."""
        try:
            rows = self.client.xinfo_consumers(self.keys.queue(queue), GROUP)
        except ResponseError:
            return []
        return [
            {"name": _text(r["name"]), "pending": int(r["pending"]), "idle": int(r["idle"])} for r in rows
        ]

    def forget_consumer(self, queue: str, consumer: str) -> None:
        """Remove a consumer (that holds no lease) from a queue's group."""
        with contextlib.suppress(ResponseError):
            self.client.xgroup_delconsumer(self.keys.queue(queue), GROUP, consumer)

    # -- scheduled jobs ---------------------------------------------------------------------------

    def promote(self, queue: str, now: int | None = None, limit: int = 1000) -> tuple[int, int | None]:
        """Move due jobs of ``queue`` from its scheduled set into the queue.

        Returns:
            ``(moved, next_due_ms)``; ``next_due_ms`` is None when nothing else is scheduled.
        """
        k = self.keys
        moved, nxt = self._script(
            "promote", [k.scheduled(queue), k.queue(queue)],
            [now_ms() if now is None else now, limit, k.job_prefix(queue), k.history_prefix(queue), k.events],
        )
        return int(moved), (None if int(nxt) < 0 else int(nxt))

    def run_now(self, queue: str, job_id: str) -> tuple[bool, str]:
        """Move one scheduled (or retrying) job into its queue now, whatever its due time.

        Returns:
            ``(moved, status)``: the status after the call, or the one that prevented the move.
        """
        k = self.keys
        moved, status = self.with_retry(lambda: self._script(
            "run_now", [k.scheduled(queue), k.queue(queue), k.job(queue, job_id), k.history(queue, job_id)],
            [job_id, now_ms(), k.events],
        ))
        return bool(moved), _text(status)

    def known_queues(self) -> list[str]:
        """Every queue name ever used in this namespace, sorted."""
        return sorted(_text(q) for q in self.client.smembers(self.keys.queues))

    # -- jobs -------------------------------------------------------------------------------------

    def find_queue(self, job_id: str) -> str | None:
        """The queue whose keys hold job ``job_id``, or None if no queue knows it."""
        queues = self.with_retry(self.known_queues)
        if not queues:
            return None
        found = self.with_retry(lambda: self._exists_in(queues, job_id))
        return next((q for q, hit in zip(queues, found, strict=True) if hit), None)

    def _exists_in(self, queues: list[str], job_id: str) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for queue in queues:
            pipe.exists(self.keys.job(queue, job_id))
        return list(pipe.execute())

    def job_fields(self, queue: str, job_id: str) -> dict[str, bytes]:
        """Every field of a job's record (empty when it is unknown or expired)."""
        raw = self.with_retry(lambda: self.client.hgetall(self.keys.job(queue, job_id)))
        return {_text(k): v for k, v in raw.items()}

    def job_history(self, queue: str, job_id: str) -> list[dict[str, Any]]:
        """The job's lifecycle events, oldest first (each: event, at_ms, attempt, and details)."""
        raw = self.with_retry(lambda: self.client.lrange(self.keys.history(queue, job_id), 0, -1))
        return [decode_event(item) for item in raw]

    def job_status(self, queue: str, job_id: str) -> str | None:
        """A job's status, or None when it is unknown or expired."""
        raw = self.with_retry(lambda: self.client.hget(self.keys.job(queue, job_id), "status"))
        return None if raw is None else _text(raw)

    def wait_done(self, queue: str, job_id: str, timeout_s: float | None) -> bool:
        """Block until the job reaches a final state (True) or ``timeout_s`` passes (False).

        Waits on the job's ``done`` list with BLMOVE onto itself, so any number of waiters wake
        without polling and without consuming the signal.
        """
        key = self.keys.done(queue, job_id)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            left = MAX_BLOCK_S if deadline is None else min(MAX_BLOCK_S, deadline - time.monotonic())
            if left <= 0:
                return False
            if self._blmove(key, max(left, 0.01)) is not None:
                return True

    def _blmove(self, key: str, wait_s: float) -> Any:
        return self.with_retry(lambda: self.client.blmove(key, key, wait_s, "RIGHT", "LEFT"))

    def cancel(self, queue: str, job_id: str) -> str | None:
        """Cancel a queued or scheduled job, or ask the worker running it to stop.

        Returns:
            The status after the call, or None when the job is unknown.
        """
        k = self.keys
        result = self.with_retry(lambda: self._script(
            "cancel",
            [k.queue(queue), k.job(queue, job_id), k.scheduled(queue), k.done(queue, job_id),
             k.cancel_requests(queue), k.history(queue, job_id)],
            [GROUP, job_id, now_ms(), to_ms(self.settings.result_ttl), k.events],
        ))
        return None if result is None else _text(result)

    def revive(self, queue: str, job_id: str) -> bool:
        """Queue a dead job again for a fresh series of attempts."""
        k = self.keys
        return bool(self.with_retry(lambda: self._script(
            "revive",
            [k.dead(queue), k.queue(queue), k.job(queue, job_id), k.done(queue, job_id), k.history(queue, job_id)],
            [job_id, now_ms(), k.events],
        )))

    def revive_many(self, queue: str, job_ids: Sequence[str]) -> int:
        """Queue many dead jobs again in one round trip; returns how many were dead and are queued."""
        k, now = self.keys, now_ms()

        def build(pipe: Pipeline) -> None:
            for job_id in job_ids:
                self._eval(pipe, "revive", [k.dead(queue), k.queue(queue), k.job(queue, job_id),
                                            k.done(queue, job_id), k.history(queue, job_id)],
                           [job_id, now, k.events])

        return sum(int(r) for r in self.with_retry(lambda: self._pipeline(build))) if job_ids else 0

    def purge_dead(self, queue: str, job_ids: Sequence[str]) -> int:
        """Delete dead jobs and their records (those still dead); returns how many were deleted."""
        if not job_ids:
            return 0
        k = self.keys
        return int(self.with_retry(lambda: self._script(
            "purge", [k.dead(queue)], [k.job_prefix(queue), k.done_prefix(queue), k.history_prefix(queue), *job_ids],
        )))

    def dead_ids(self, queue: str, start: int = 0, stop: int = -1) -> list[tuple[str, int]]:
        """Dead job ids of ``queue`` with their time of death (ms), newest first."""
        rows = self.client.zrevrange(self.keys.dead(queue), start, stop, withscores=True)
        return [(_text(job_id), int(score)) for job_id, score in rows]


def _counter_names(outcome: Outcome) -> tuple[str, ...]:
    """The counters an outcome adds to (``processed`` counts attempts that ran)."""
    if isinstance(outcome, Succeeded):
        return ("processed",)
    if isinstance(outcome, Retried):
        return ("processed", "failed", "retried")
    if isinstance(outcome, Buried):
        return ("processed", "failed", "dead") if outcome.failed_attempt else ("dead",)
    if isinstance(outcome, Cancelled):
        return ("cancelled",)
    return ()
