"""Queues: enqueue, fetch (the lease), start an attempt, record outcomes, give leases back, promote.

Queues are Redis streams read through one consumer group (:data:`GROUP`): the group's pending-entries
list is the lease a worker holds while it runs a job, so a job never leaves Redis before its outcome is
recorded, and the jobs of a worker that died are found and given back (see ``docs/design.md``).

Per-job writes of a batch are folded into one pipelined round trip: the outcome of one job travels with
the start of the next, because round trips, not Python, are the budget of a job queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple, NoReturn

import redis
from redis.exceptions import RedisError, ResponseError

from resq.broker.connection import (
    CONNECTION_ERRORS,
    MAX_BLOCK_S,
    Part,
    Pending,
    Pipeline,
    Subscription,
    raise_first_error,
    status_of,
    text,
)
from resq.broker.handoff import HandedOff, HandOff, Step, unwrap
from resq.broker.stats import Stats
from resq.clock import now_ms, to_ms
from resq.codec import pack
from resq.errors import BrokenKey, BrokerError, BrokerUnavailable
from resq.flow import GROUP_LEVEL, NO_FLOW, Flow
from resq.job import JobStatus
from resq.log import get_logger
from resq.outcomes import Dead, Delivery, Discarded, Held, Lost, Outcome, Retried, Started, Succeeded

__all__ = ["GROUP", "NewJob", "Queues"]

log = get_logger("resq.broker")

#: The consumer group every worker reads queues through.
GROUP = "resq"
#: How often a producer adds the queues it enqueues to to the namespace's set of queues, in seconds.
ANNOUNCE_EVERY_S = 60.0
#: The most dead jobs one trim deletes (the rest at the next death).
TRIM_BATCH = 500
#: How long a worker waits before reading a queue again whose slot is moving to another node (resharding).
SLOT_MOVING_S = 0.05
#: How Redis answers a read of a stream (or a group) that no longer exists.
STREAM_GONE = ("NOGROUP", "UNBLOCKED")


class ReplicasBehind(redis.ConnectionError):
    """Fewer replicas than ``wait_replicas`` confirmed an enqueue in time: retried like a lost
    connection, then ``BrokerUnavailable``."""


class NewJob(NamedTuple):
    """A job to store: its id, task, encoded envelope, due time (ms; 0: now), flow control, and the joins
    it is a member of (a chord's, a batch's: packed by ``resq.broker.handoff.pack_joins``; empty: none)."""

    job_id: str
    task: str
    envelope: bytes
    due_ms: int = 0
    flow: Flow = NO_FLOW
    joins: bytes = b""


class _Chunk(NamedTuple):
    """A chunk of :meth:`Queues.enqueue_chunks` in flight: its replies to come, how to send it again, its
    jobs and the members registered for it."""

    sent: Pending
    build: Callable[[Pipeline], None]
    jobs: Sequence[NewJob]
    added: dict[str, list[str]]


class _Stream(NamedTuple):
    """A stream a read takes entries from: its key, its queue, and which of the queue's streams it is."""

    key: str
    queue: str
    front: bool
    priority: int


class Queues(Part):
    """The queue-side operations of one namespace."""

    def __init__(self, connection: Any, keys: Any, stats: Stats) -> None:
        super().__init__(connection, keys)
        self._stats = stats
        self.handoff = HandOff(connection, keys, self._make_steps)
        #: queue -> when this process last added it to the set of queues (monotonic)
        self._announced: dict[str, float] = {}

    # -- producing --------------------------------------------------------------------------------

    def enqueue(
        self,
        queue: str,
        job_id: str,
        task: str,
        envelope: bytes,
        due_ms: int = 0,
        *,
        if_absent: bool = False,
        flow: Flow = NO_FLOW,
        joins: bytes = b"",
    ) -> tuple[JobStatus | None, bool]:
        """Store a job and queue it (or schedule it when ``due_ms`` is in the future), retrying a lost
        connection for ``broker_retry_s``.

        Args:
            if_absent: create the job only if no record of ``job_id`` exists at all, even a finished one
                (how a cron tick with a deterministic id is fired at most once).

        Returns:
            ``(status, created)``: ``created`` is False when a live job with this id already existed
            (with ``if_absent``: when any record existed; its status is None when it has none).
        """
        return self.enqueue_many(queue, [NewJob(job_id, task, envelope, due_ms, flow, joins)], if_absent=if_absent)[0]

    def enqueue_many(
        self, queue: str, jobs: Sequence[NewJob], *, if_absent: bool = False
    ) -> list[tuple[JobStatus | None, bool]]:
        """Store jobs of one queue in one round trip and one script call, as :meth:`enqueue` does each.

        Args:
            jobs: the jobs (a chunk: the caller splits large batches, so that one script call stays short).

        Returns:
            ``(status, created)`` of each job, in order.
        """
        c = self.connection
        build = self._enqueue_build(queue, jobs, if_absent)
        added = self._register(jobs)
        replies = c.with_retry(lambda: self._enqueued(c.fast_pipeline(build)))
        self._unregister(added, jobs, replies)
        self.announce(queue)
        return replies

    def _make_steps(self, steps: list[Step]) -> None:
        """Create chain steps handed off (``HandOff.apply``), each once whatever the retries: their ids were
        drawn when the chain was made, and ``if_absent`` leaves a step that exists (or existed) alone."""
        by_queue: dict[str, list[NewJob]] = {}
        for s in steps:
            flow = dataclasses.replace(Flow.unpacked(s.flow), priority=s.priority)
            by_queue.setdefault(s.queue, []).append(NewJob(s.job_id, s.task, s.envelope, 0, flow, s.joins))
        for queue, jobs in by_queue.items():
            self.enqueue_many(queue, jobs, if_absent=True)

    def _register(self, jobs: Sequence[NewJob]) -> dict[str, list[str]]:
        """Register the jobs of ``jobs`` that belong to joins as their members, before they are stored
        (``HandOff.register``); returns the ids registered now, by join."""
        return self.handoff.register((job.job_id, job.joins) for job in jobs if job.joins)

    def _unregister(
        self, added: dict[str, list[str]], jobs: Sequence[NewJob], replies: list[tuple[JobStatus | None, bool]]
    ) -> None:
        """Drop the members registered for jobs that were not created (their ids were live jobs')."""
        if added:
            made = {job.job_id for job, (_, created) in zip(jobs, replies, strict=True) if created}
            self.handoff.unregister(added, made)

    def enqueue_chunks(
        self, chunks: Iterable[tuple[str, Sequence[NewJob]]]
    ) -> Iterator[list[tuple[JobStatus | None, bool]]]:
        """Enqueue chunks as :meth:`enqueue_many` does each, yielding each one's ``(status, created)``
        pairs in order; a chunk is sent before the one before it is answered, so the caller builds the
        next chunk (this iterator pulls it from ``chunks``) while Redis runs the one in flight."""
        in_flight: deque[_Chunk] = deque()
        try:
            for queue, jobs in chunks:
                self.announce(queue)
                build = self._enqueue_build(queue, jobs, False)
                added = self._register(jobs)
                in_flight.append(_Chunk(self.connection.send_later(build), build, jobs, added))
                if len(in_flight) > 1:
                    yield self._chunk_replies(in_flight.popleft())
            while in_flight:
                yield self._chunk_replies(in_flight.popleft())
        finally:
            for chunk in in_flight:  # an error (or the caller) ended the loop: their connections go
                chunk.sent.close()

    def _chunk_replies(self, chunk: _Chunk) -> list[tuple[JobStatus | None, bool]]:
        """The replies of a chunk sent ahead; sent again (idempotent ids) while replicas lag behind."""
        c = self.connection
        try:
            replies = self._enqueued(chunk.sent.replies())
        except ReplicasBehind:
            replies = c.with_retry(lambda: self._enqueued(c.fast_pipeline(chunk.build)))
        self._unregister(chunk.added, chunk.jobs, replies)
        return replies

    def _enqueue_build(self, queue: str, jobs: Sequence[NewJob], if_absent: bool) -> Callable[[Pipeline], None]:
        """What :meth:`enqueue_many` sends: the enqueue script, and a wake-up when a job is due later."""
        script, keys, args, due = self._enqueue_call(queue, jobs, if_absent, self.connection.listened(self.keys.events))

        replicas, wait_ms = self.settings.wait_replicas, int(self.settings.wait_timeout * 1000)

        def build(pipe: Pipeline) -> None:
            self.connection.eval(pipe, script, keys, args)
            if due:
                pipe.publish(self.keys.wakeup, due)
            if replicas:
                pipe.wait(replicas, wait_ms)

        return build

    def _enqueue_call(
        self, queue: str, jobs: Sequence[NewJob], if_absent: bool, channel: str
    ) -> tuple[str, list[str], list[Any], int]:
        """The script (``enqueue``, or ``group_enqueue`` for jobs of groups due now), its keys and
        arguments for ``jobs``, and the earliest later due time (0: none)."""
        k, now = self.keys, now_ms()
        args: list[Any] = [now, queue, channel, "nx" if if_absent else "", GROUP]
        if jobs and all(job.flow.group is not None and job.due_ms <= now and not job.joins for job in jobs):
            keys = k.groups(queue)
            for job in jobs:
                keys += [k.job(queue, job.job_id), k.done(queue, job.job_id)]
                args += [job.job_id, job.envelope, job.task, job.flow.group, job.flow.packed()]
            return "group_enqueue", keys, args, 0
        keys = [k.levels(queue), k.scheduled(queue)]
        for job in jobs:
            flow = job.flow
            keys += [k.job(queue, job.job_id), k.done(queue, job.job_id), k.queue(queue, flow.priority)]
            args += [job.job_id, job.envelope, job.due_ms, job.task, flow.priority, flow.packed(), job.joins]
        return "enqueue", keys, args, min((job.due_ms for job in jobs if job.due_ms), default=0)

    async def aenqueue(
        self,
        queue: str,
        job_id: str,
        task: str,
        envelope: bytes,
        due_ms: int = 0,
        *,
        flow: Flow = NO_FLOW,
        joins: bytes = b"",
    ) -> tuple[JobStatus | None, bool]:
        """:meth:`enqueue` for ``async`` code, on the running loop's ``redis.asyncio`` client: the loop is
        never blocked (the same script, the same retry of a lost connection for ``broker_retry_s``). A
        member of a join (rare in ``async`` code) is stored by :meth:`enqueue` on a thread: its
        registration in the join comes first."""
        if joins:
            call = functools.partial(self.enqueue, queue, job_id, task, envelope, due_ms, flow=flow, joins=joins)
            return await asyncio.to_thread(call)
        channel = self.connection.listened(self.keys.events, look=False)
        job = NewJob(job_id, task, envelope, due_ms, flow, joins)
        script, keys, args, due = self._enqueue_call(queue, [job], False, channel)
        client = self.connection.async_client
        if self._announce_due(queue):
            await client.sadd(self.keys.queues, queue)  # advisory, as in _announce; a failure raises here
        replies = [await self.connection.ascript(script, keys, args)]
        if due:
            await client.publish(self.keys.wakeup, due)
        if self.settings.wait_replicas:
            replies.append(await client.wait(self.settings.wait_replicas, int(self.settings.wait_timeout * 1000)))
        return self._enqueued(replies)[0]

    def _enqueued(self, replies: list[Any]) -> list[tuple[JobStatus | None, bool]]:
        """The ``(status, created)`` of each job of an enqueue's replies; with ``wait_replicas``, a
        ``ReplicasBehind`` (a connection error: the enqueue is sent again, its ids make it idempotent)
        when fewer replicas than that confirmed it."""
        replicas = self.settings.wait_replicas
        if replicas and int(replies[-1]) < replicas:
            raise ReplicasBehind(
                f"{int(replies[-1])} of {replicas} replicas confirmed the enqueue within "
                f"{self.settings.wait_timeout} s (wait_replicas): the jobs are on the master, not yet on enough "
                "replicas"
            )
        return [(status_of(status), bool(created)) for status, created in replies[0]]

    def announce(self, queue: str) -> None:
        """Add ``queue`` to the namespace's set of queues: on its first enqueue in this process, then
        again every ``ANNOUNCE_EVERY_S`` (the set may have been flushed meanwhile). Advisory, so its own
        round trip (once a minute) whose failure is logged, never raised: the jobs are enqueued."""
        if not self._announce_due(queue):
            return
        try:
            self._redis.sadd(self.keys.queues, queue)
        except RedisError as exc:
            del self._announced[queue]  # try again at the next enqueue
            if not isinstance(exc, CONNECTION_ERRORS):  # an outage or a refusal: the enqueue itself says so
                log.warning("announce_failed", queue=queue, error=str(exc), hint="the set of queues is broken")

    def _announce_due(self, queue: str) -> bool:
        """Whether to add ``queue`` to the set of queues now (then it counts as done)."""
        now = time.monotonic()
        if now - self._announced.get(queue, -ANNOUNCE_EVERY_S) < ANNOUNCE_EVERY_S:
            return False
        self._announced[queue] = now
        return True

    def wake(self, due_ms: int | None = None) -> None:
        """Tell schedulers and supervisors that something is due at ``due_ms`` (default: now)."""
        self._redis.publish(self.keys.wakeup, now_ms() if due_ms is None else due_ms)

    def subscribe_wakeups(self) -> Subscription:
        """A subscription to the wake-ups producers publish when they schedule a job."""
        return self.connection.subscribe(self.keys.wakeup)

    # -- consuming --------------------------------------------------------------------------------

    def ensure_groups(self, queues: Iterable[str]) -> None:
        """Create the consumer group of each queue's streams (its front, its own, and those of the
        priorities its jobs were given) if missing, then add the queues to the namespace's set of queues
        (last: an error there leaves the groups made)."""
        queues = list(queues)
        levels = self.levels(queues)
        for stream in (s for queue in queues for s in self.keys.streams(queue, levels.get(queue, ()))):
            try:
                self._redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    self._raise_broken([stream], exc)
        if queues:
            self._redis.sadd(self.keys.queues, *queues)

    def fetch(
        self,
        consumer: str,
        queues: Sequence[str],
        count: int,
        block_s: float | None,
        levels: Mapping[str, Sequence[int]] | None = None,
    ) -> list[Delivery]:
        """Lease up to ``count`` new entries, blocking up to ``block_s`` (None: not at all).

        Strict priority: the queues are tried in order without blocking, and within a queue its
        priorities (``levels``: the ones above 0 its jobs were given, see :meth:`levels`) from the highest;
        the first read that finds entries wins. Only when all are empty does one blocking read wait on
        all of them at once. A queue's front stream (jobs given back) is read with its first read.
        """
        self.handoff.delete_applied()  # before a read that may block: the next outcomes may be far off
        reads = [read for queue in queues for read in self._reads(queue, (levels or {}).get(queue, ()))]
        if len(reads) > 1:
            for read in reads:
                found = self._read(consumer, read, count, None)
                if found:
                    return found
            if block_s is None:
                return []
        block = None if block_s is None else max(1, int(min(block_s, MAX_BLOCK_S) * 1000))
        if self.connection.cluster and block is not None and len(queues) > 1:
            return self._read_each(consumer, reads, count, block)
        return self._read(consumer, [stream for read in reads for stream in read], count, block)

    def _read_each(
        self, consumer: str, reads: Sequence[Sequence[_Stream]], count: int, block_ms: int
    ) -> list[Delivery]:
        """On a Redis Cluster, the blocking read of :meth:`fetch` made as one blocking read per queue (each
        queue's streams share its slot; a read's keys must), all at once (``Connection.block_each``): the
        first to find entries wakes the others."""
        by_queue: dict[str, list[_Stream]] = {}
        for read in reads:
            for s in read:
                if s.priority != GROUP_LEVEL:  # grouped jobs are handed out by `take`, read without blocking
                    by_queue.setdefault(s.queue, []).append(s)
        streams = list(by_queue.values())
        commands = [
            ("XREADGROUP", "GROUP", GROUP, consumer, "COUNT", count, "BLOCK", block_ms, "STREAMS",
             *(s.key for s in group), *(">" for _ in group))
            for group in streams
        ]  # fmt: skip
        try:
            replies = self.connection.block_each(commands)
        except (redis.exceptions.MovedError, redis.exceptions.AskError):
            # a queue's slot moved (or is moving: resharding) under the read; read the slots again, and let
            # a migration that is under way finish before the next read
            self.connection.refresh_topology()
            time.sleep(SLOT_MOVING_S)
            return []
        except ResponseError as exc:
            if not str(exc).startswith(STREAM_GONE):
                self._raise_broken([s.key for group in streams for s in group], exc)
            self.ensure_groups(by_queue)
            return []
        now, deliveries = now_ms(), []
        for group, reply in zip(streams, replies, strict=True):
            by_key = {s.key: s for s in group}
            for stream, entries in reply.items() if isinstance(reply, dict) else reply or []:  # RESP3: a map
                s = by_key[text(stream)]
                for entry, flat in entries:
                    fields = None if flat is None else dict(zip(flat[::2], flat[1::2], strict=True))
                    deliveries.append(_delivery(s.queue, entry, fields, s.front, now, s.priority))
        if len(deliveries) > count:
            self._hand_back_extra(deliveries[count:])
        return deliveries[:count]

    def _reads(self, queue: str, levels: Sequence[int]) -> list[list[_Stream]]:
        """The reads of one queue, in the order tried: its front with its highest priority, then each
        lower one (a queue without priorities: one read of its front and its own stream), then, when it
        has groups, its grouped jobs (handed out by the ``take`` script through their own stream)."""
        k = self.keys
        ordered = [*sorted((p for p in levels if p != GROUP_LEVEL), reverse=True), 0]
        reads = [[_Stream(k.queue(queue, p), queue, False, p)] for p in ordered]
        reads[0].insert(0, _Stream(k.front(queue), queue, True, 0))
        if GROUP_LEVEL in levels:
            reads.append([_Stream(k.queue(queue, GROUP_LEVEL), queue, False, GROUP_LEVEL)])
        return reads

    def _take(self, consumer: str, s: _Stream, count: int) -> list[Delivery]:
        """Grouped jobs of a queue, up to ``count``, leased to ``consumer`` by the ``take`` script (the
        groups served round-robin, weighted; a doorbell entry it read is dropped)."""
        reply = self.connection.script("take", self.keys.groups(s.queue), [GROUP, consumer, count])
        now, deliveries, bells = now_ms(), [], []
        for _stream, entries in reply or []:
            for entry, flat in entries:
                fields = dict(zip(flat[::2], flat[1::2], strict=True))
                if b"bell" in fields:
                    bells.append(text(entry))
                else:
                    deliveries.append(_delivery(s.queue, entry, fields, False, now, GROUP_LEVEL))
        if bells:
            self._drop_bells(s, bells)
        return deliveries

    def _drop_bells(self, s: _Stream, entries: Sequence[str]) -> None:
        """Ack and delete doorbell entries (they carry no job: they woke a blocked worker)."""

        def build(pipe: Pipeline) -> None:
            pipe.xack(s.key, GROUP, *entries)
            pipe.xdel(s.key, *entries)

        self.connection.pipeline(build)

    def levels(self, queues: Sequence[str]) -> dict[str, list[int]]:
        """The priorities above 0 that jobs of each queue were given (queues with none are left out)."""
        return self.look(queues)[1]

    def _read(self, consumer: str, streams: Sequence[_Stream], count: int, block_ms: int | None) -> list[Delivery]:
        if block_ms is None and len(streams) == 1 and streams[0].priority == GROUP_LEVEL:
            return self._take(consumer, streams[0], count)
        by_key = {s.key: s for s in streams}
        try:
            reply = self._redis.xreadgroup(GROUP, consumer, dict.fromkeys(by_key, ">"), count=count, block=block_ms)
        except ResponseError as exc:
            if not str(exc).startswith(STREAM_GONE):
                self._raise_broken(list(by_key), exc)
            # The stream went (FLUSHDB, FLUSHALL, DEL, a restart from an empty dataset): NOGROUP on the next
            # read, UNBLOCKED for a read blocked on it then. Recreate the stream and its group and go on.
            self.ensure_groups(dict.fromkeys(s.queue for s in streams))
            return []
        found: dict[str, list[Delivery]] = {}
        now = now_ms()
        for stream, entries in reply or []:
            s = by_key[text(stream)]
            if s.priority == GROUP_LEVEL:  # a doorbell: grouped jobs wait; take them
                self._drop_bells(s, [text(entry) for entry, fields in entries if b"bell" in fields])
                found[s.key] = self._take(consumer, s, count)
                continue
            found[s.key] = [_delivery(s.queue, entry, fields, s.front, now, s.priority) for entry, fields in entries]
        deliveries = [d for key in by_key for d in found.get(key, [])]
        if len(deliveries) > count:
            self._hand_back_extra(deliveries[count:])
        return deliveries[:count]

    def _raise_broken(self, streams: list[str], exc: ResponseError) -> NoReturn:
        """A read or a group creation failed with ``exc``: raise the error naming the first of ``streams``
        that holds another type than a stream (something else wrote to it), else ``exc`` itself."""
        pipe = self._redis.pipeline(transaction=False)
        for stream in streams:
            pipe.type(stream)
        for stream, kind in zip(streams, pipe.execute(), strict=True):
            if text(kind) not in ("stream", "none"):
                raise BrokenKey(
                    f"Redis refused a command: {stream} holds a {text(kind)}, not a stream", stream
                ) from exc
        raise exc

    def _hand_back_extra(self, extra: list[Delivery]) -> None:
        """A read over several streams takes up to its count from each: give the leases past the count
        back at once, to their queue's front, where they are next in line as they were (a worker asking
        for one job holds one, and the others stay free for other workers)."""
        channel, now = self.connection.listened(self.keys.events), now_ms()

        def build(pipe: Pipeline) -> None:
            for delivery in extra:
                self._add_release(pipe, delivery, "returned", b"", now, channel)

        replies = self.connection.pipeline(build)
        self.hand_off(_entries_of([(i, d.queue, str(d.job_id)) for i, d in enumerate(extra)], replies))

    def start(
        self, worker_id: str, delivery: Delivery, outcomes: Sequence[Outcome] = (), counted: Sequence[Outcome] = ()
    ) -> Started:
        """Begin an attempt of ``delivery``, recording earlier ``outcomes`` in the same round trip.

        Folding the previous job's outcome (result or error, ack) into the start of the next costs one
        round trip per job, while the job that runs is the only one marked ``running``.

        Args:
            worker_id: the consumer the lease belongs to.
            delivery: the lease whose attempt begins now.
            outcomes: outcomes to record first.
            counted: outcomes whose counters to add now. A worker passes none while it works through a
                batch and all of them at its end, so a batch adds each counter once.

        Returns:
            What to run (or, through ``Started.runnable``, that the job must not run).
        """
        k, now = self.keys, now_ms()
        channel = self.connection.listened(k.events)
        marks: list[tuple[int, Outcome]] = []
        counters: list[tuple[int, str]] = []

        def build(pipe: Pipeline) -> None:
            marks[:] = self._add_outcomes(pipe, outcomes, now, channel)
            counters[:] = self._add_counters(pipe, counted)
            self.handoff.add_deletes(pipe)
            if delivery.job_id is not None:
                keys, args = self._start_call(worker_id, delivery, now, channel)
                self.connection.eval(pipe, "start", keys, args)

        replies = self._replies(self.connection.fast_pipeline(build, keep_errors=True), counters)
        handed = _unwrapped(marks, replies)
        if delivery.job_id is not None:
            replies[-1], entry = unwrap(replies[-1])  # a job that expired before it started ends here
            if entry is not None:
                handed.append(HandedOff(delivery.queue, str(delivery.job_id), entry))
        self.hand_off(handed, delete_later=True)
        refused = _log_refused(marks, replies)
        if delivery.job_id is None:
            return Started(delivery, None, 0, None, refused=refused)
        envelope, attempt, status, *more = replies[-1]
        envelope = envelope or delivery.fields.get(b"envelope")  # enqueued jobs carry it in their entry
        orphaned = bool(more and more[0])
        held = text(more[1]) if len(more) > 1 else None
        return Started(
            delivery, envelope or None, int(attempt), status_of(status), orphan=orphaned, refused=refused, held=held
        )

    def _start_call(self, worker_id: str, delivery: Delivery, now: int, channel: str) -> tuple[list[str], list[Any]]:
        """The start script's keys and arguments: a job with flow control names the keys of its limits."""
        k, q, job_id = self.keys, delivery.queue, str(delivery.job_id)
        keys = [k.job(q, job_id), k.stream(q, delivery.front, delivery.priority)]
        args: list[Any] = [worker_id, now, delivery.entry, job_id, channel]
        flow = delivery.flow
        if not flow.gated:
            return keys, args
        slot_key, rate_key = flow.concurrency_key or "", flow.rate_key or ""
        keys += [k.scheduled(q), k.front(q), k.done(q, job_id), k.slots(q, slot_key), k.parked(q, slot_key)]
        keys += [k.rate(q, rate_key), k.rate_next(q, rate_key), k.handoff(q)]
        ttl = to_ms(self.settings.result_ttl)
        args += [GROUP, flow.concurrency, flow.rate, flow.rate_window_ms, flow.expires_ms, ttl]
        return keys, [*args, delivery.fields.get(b"flow", b""), k.wakeup]

    def _slot_call(self, delivery: Delivery) -> tuple[list[str], list[Any]]:
        """The keys and argument an outcome script appends to free the job's concurrency slot (none for a
        job without a concurrency key)."""
        flow = delivery.flow
        if flow.concurrency_key is None:
            return [], []
        k, q = self.keys, delivery.queue
        return [k.slots(q, flow.concurrency_key), k.parked(q, flow.concurrency_key), k.front(q)], [flow.concurrency]

    def record(self, outcomes: Sequence[Outcome], counted: Sequence[Outcome] | None = None) -> tuple[Outcome, ...]:
        """Record outcomes (results, retries, deaths, cancellations, discards) in one round trip.

        Args:
            counted: outcomes whose counters to add (default: ``outcomes``).

        Returns:
            The outcomes refused as stale (nothing of them was recorded; see fencing in ``_lib.lua``).
        """
        counted = outcomes if counted is None else counted
        if not outcomes and not counted:
            return ()
        channel = self.connection.listened(self.keys.events) if outcomes else ""
        marks: list[tuple[int, Outcome]] = []
        counters: list[tuple[int, str]] = []

        def build(pipe: Pipeline) -> None:
            marks[:] = self._add_outcomes(pipe, outcomes, now_ms(), channel)
            counters[:] = self._add_counters(pipe, counted)
            self.handoff.add_deletes(pipe)

        replies = self._replies(self.connection.fast_pipeline(build, keep_errors=True), counters)
        self.hand_off(_unwrapped(marks, replies), delete_later=True)
        self._trim_after(marks, replies)
        return _log_refused(marks, replies)

    def hand_off(self, handed: list[HandedOff], *, delete_later: bool = False) -> None:
        """Apply the hand-off entries of jobs that just ended as members of joins (``HandOff.apply``;
        ``delete_later``: their deletion goes with this process's next outcomes). Their ends are recorded
        already: an entry that cannot be applied now (Redis went away) is logged, and applied by the
        reaper."""
        if not handed:
            return
        try:
            self.handoff.apply(handed, delete_later=delete_later)
        except (BrokerUnavailable, BrokerError) as exc:
            log.warning(
                "handoff_deferred",
                job_ids=[h.job_id for h in handed],
                error=str(exc),
                hint="the reaper applies it within a minute (docs/workflows.md#redis-cluster)",
            )

    def _trim_after(self, marks: list[tuple[int, Outcome]], replies: list[Any]) -> None:
        """Trim the dead set of each queue an outcome just added a dead job to (the ``dead`` script
        answers the set's size, -1 for a stale lease; ``release`` answers ``dead`` for a lost worker's job
        gone dead): by age, and past ``dead_max_jobs``. Deaths are rare, so the trim's reads are too."""
        filled = {
            outcome.delivery.queue
            for index, outcome in marks
            if (isinstance(outcome, Dead) and isinstance(replies[index], int) and replies[index] > 0)
            or (isinstance(outcome, Lost) and replies[index] == b"dead")
        }
        for queue in filled:
            self.trim_dead(queue)

    def trim_dead(self, queue: str) -> int:
        """Delete the dead jobs of ``queue`` older than ``dead_ttl`` and the oldest past ``dead_max_jobs``,
        with their records; returns how many. Two steps (the ids read first, then the ``purge`` script
        names their keys), so that every key a script deletes is declared."""
        s, dead = self.settings, self.keys.dead(queue)

        def look(pipe: Pipeline) -> None:
            pipe.zcard(dead)
            pipe.zrangebyscore(dead, "-inf", now_ms() - to_ms(s.dead_ttl), start=0, num=TRIM_BATCH)

        size, old = self.connection.pipeline(look)
        extra = min(int(size) - len(old) - s.dead_max_jobs, TRIM_BATCH)
        ids = [text(job_id) for job_id in old]
        if extra > 0:
            ids += [text(job_id) for job_id in self._redis.zrange(dead, len(old), len(old) + extra - 1)]
        return self.purge_dead(queue, ids)

    def purge_dead(self, queue: str, job_ids: Sequence[str]) -> int:
        """Delete dead jobs and their records (those still dead); returns how many were deleted."""
        if not job_ids:
            return 0
        k, c = self.keys, self.connection
        keys = [k.dead(queue), *(key for job_id in job_ids for key in (k.job(queue, job_id), k.done(queue, job_id)))]
        return int(c.with_retry(lambda: c.script("purge", keys, list(job_ids))))

    def _add_counters(self, pipe: Any, counted: Sequence[Outcome]) -> list[tuple[int, str]]:
        """Add the counters of ``counted`` to ``pipe``; returns where each command is, and its key."""
        first = len(pipe.commands)
        self._stats.add(pipe, counted)
        return [(first + i, command[1]) for i, command in enumerate(pipe.commands[first:])]

    def _replies(self, replies: list[Any], counters: list[tuple[int, str]]) -> list[Any]:
        """The replies of a round trip of outcomes, counters and a start: a counter Redis refused (its
        key holds something else) is set aside and logged, and loses that addition only (counters are
        advisory, and must never stop a job's outcome); any other error reply is raised."""
        for index, key in counters:
            if isinstance(replies[index], Exception):
                log.error("counter_set_aside", key=key, moved_to=self._set_aside(key), error=str(replies[index]))
                replies[index] = None
        return raise_first_error(replies)

    def _add_outcomes(
        self, pipe: Any, outcomes: Sequence[Outcome], now: int, channel: str
    ) -> list[tuple[int, Outcome]]:
        """Add each outcome's commands to ``pipe`` (a :meth:`~Connection.fast_pipeline` batch); returns
        where each outcome's first reply will be, to find the ones a script refused."""
        marks: list[tuple[int, Outcome]] = []
        for outcome in outcomes:
            if not isinstance(outcome, Held):  # recorded by its start already: no command, no reply
                marks.append((len(pipe.commands), outcome))
            self._add_outcome(pipe, outcome, now, channel)
        return marks

    def _add_outcome(self, pipe: Pipeline, outcome: Outcome, now: int, channel: str) -> None:
        k, d, s, run = self.keys, outcome.delivery, self.settings, self.connection.eval
        if isinstance(outcome, Held):
            return  # the start script took the entry out of the stream and recorded what became of the job
        q, job_id, stream = d.queue, outcome.job_id, k.stream(d.queue, d.front, d.priority)
        slot_keys, slot_args = self._slot_call(d)
        if isinstance(outcome, Discarded):
            pipe.xack(stream, GROUP, d.entry)
            pipe.xdel(stream, d.entry)
        elif isinstance(outcome, Succeeded):
            keys = [stream, k.job(q, job_id), k.done(q, job_id), k.cancel_requests(q), k.handoff(q), *slot_keys]
            args = [GROUP, d.entry, outcome.result, now, outcome.ttl_ms, outcome.duration_ms, job_id, channel]
            args += [_carried(d), *slot_args]
            if outcome.then is not None:  # the next step: made here in the same queue, else by the hand-off
                step, here = outcome.then, outcome.then.queue == q
                nq = step.queue
                if here:
                    keys += [k.levels(nq), k.scheduled(nq), k.job(nq, step.job_id), k.done(nq, step.job_id)]
                    keys.append(k.queue(nq, step.priority))
                args += [*([] if slot_args else ["0"]), "then" if here else "later", nq, GROUP, step.job_id]
                args += [step.envelope, step.task, step.priority, step.flow, step.joins]
            run(pipe, "succeed", keys, args)
        elif isinstance(outcome, Retried):
            keys = [stream, k.job(q, job_id), k.scheduled(q), k.cancel_requests(q), k.done(q, job_id), k.handoff(q)]
            keys += slot_keys
            args = [GROUP, d.entry, outcome.error, now, outcome.due_ms, job_id, outcome.duration_ms, channel]
            counts = "0" if outcome.snoozed else "1"
            run(pipe, "retry", keys, [*args, _carried(d), to_ms(s.result_ttl), counts, *slot_args])
            pipe.publish(k.wakeup, outcome.due_ms)
        elif isinstance(outcome, Lost):
            self._add_release(pipe, d, "lost", outcome.error, now, channel)
            pipe.srem(k.cancel_requests(q), job_id)  # a cancellation asked for meanwhile must not linger
        elif isinstance(outcome, Dead):
            keys = [stream, k.job(q, job_id), k.dead(q), k.done(q, job_id), k.cancel_requests(q), k.handoff(q)]
            keys += slot_keys
            dead_args = [to_ms(s.dead_ttl)]
            attempt = "1" if outcome.failed_attempt else "0"
            payload = outcome.raw or _carried(d)
            args = [GROUP, d.entry, outcome.error, now, job_id, *dead_args, payload, outcome.duration_ms]
            run(pipe, "dead", keys, [*args, channel, attempt, *slot_args])
        else:
            keys = [stream, k.job(q, job_id), k.done(q, job_id), k.cancel_requests(q), k.handoff(q), *slot_keys]
            args = [GROUP, d.entry, job_id, now, to_ms(s.result_ttl), outcome.reason, channel, _carried(d)]
            run(pipe, "cancelled", keys, [*args, *slot_args])

    def cancel_requested(self, queue: str, job_ids: Sequence[str]) -> set[str]:
        """Which of ``job_ids`` (running in ``queue``) someone asked to cancel."""
        if not job_ids:
            return set()
        flags = self._redis.smismember(self.keys.cancel_requests(queue), list(job_ids))
        return {job_id for job_id, flag in zip(job_ids, flags, strict=True) if flag}

    # -- leases -----------------------------------------------------------------------------------

    def release(self, delivery: Delivery, mode: str, error: bytes = b"") -> str:
        """Give a leased entry back to the front of its queue (its front stream).

        Args:
            delivery: the lease.
            mode: ``"returned"`` (handed back: the attempt does not count) or ``"lost"`` (its worker
                died: counts towards ``max_worker_losses``, after which the job is dead).
            error: the encoded error stored if the job goes dead.

        Returns:
            ``queued``, ``dead``, ``cancelled`` (its cancellation was asked for while it ran: it ends
            instead of going back), or ``gone`` when it was no longer leased.
        """
        if delivery.job_id is None:
            return "gone"
        channel = self.connection.listened(self.keys.events)
        reply = self.connection.pipeline(lambda pipe: self._add_release(pipe, delivery, mode, error, now_ms(), channel))
        status, entry = unwrap(reply[0])
        if entry is not None:
            self.hand_off([HandedOff(delivery.queue, str(delivery.job_id), entry)])
        if text(status) == "dead":
            self.trim_dead(delivery.queue)
        return text(status)

    def _add_release(self, pipe: Pipeline, delivery: Delivery, mode: str, error: bytes, now: int, channel: str) -> None:
        k, s, q, job_id = self.keys, self.settings, delivery.queue, str(delivery.job_id)
        stream = k.stream(q, delivery.front, delivery.priority)
        keys = [stream, k.job(q, job_id), k.dead(q), k.done(q, job_id), k.front(q), k.cancel_requests(q), k.handoff(q)]
        dead_args = [to_ms(s.dead_ttl)]
        args = [GROUP, delivery.entry, job_id, now, mode, s.max_worker_losses, error, *dead_args, channel]
        ttl, flow = to_ms(s.result_ttl), delivery.fields.get(b"flow", b"")
        slot_keys, slot_args = self._slot_call(delivery)
        self.connection.eval(pipe, "release", [*keys, *slot_keys], [*args, _carried(delivery), ttl, flow, *slot_args])

    def pending_of(self, queue: str, consumer: str, limit: int = 1000) -> list[Delivery]:
        """The entries of ``queue`` (its front stream, then the streams of its priorities, highest
        first) leased by ``consumer``."""
        deliveries = []
        for read in self._reads(queue, self.levels([queue]).get(queue, ())):
            for s in read:
                try:
                    pending = self._redis.xpending_range(s.key, GROUP, "-", "+", limit, consumername=consumer)
                except ResponseError:
                    continue
                for item in pending:
                    entry = item["message_id"]
                    found = self._redis.xrange(s.key, entry, entry)
                    deliveries.append(_delivery(queue, entry, found[0][1] if found else {}, s.front, 0, s.priority))
        return deliveries

    def with_fields(self, delivery: Delivery) -> Delivery:
        """``delivery`` with the fields its entry carries (a supervisor knows a child's lease by its id
        only: the outcome needs the entry's flow control to free the job's slot)."""
        if delivery.fields:
            return delivery
        stream = self.keys.stream(delivery.queue, delivery.front, delivery.priority)
        found = self._redis.xrange(stream, delivery.entry, delivery.entry)
        return dataclasses.replace(delivery, fields=dict(found[0][1])) if found else delivery

    def consumers(self, queue: str) -> list[dict[str, Any]]:
        """The consumers of a queue's groups (front and own stream) with their pending count and idle
        time (ms): leases summed, the shorter idle time."""
        found: dict[str, dict[str, Any]] = {}
        for stream in self.keys.streams(queue):
            try:
                rows = self._redis.xinfo_consumers(stream, GROUP)
            except ResponseError:
                continue
            for r in rows:
                name, pending, idle = text(r["name"]), int(r["pending"]), int(r["idle"])
                seen = found.setdefault(name, {"name": name, "pending": 0, "idle": idle})
                seen["pending"] += pending
                seen["idle"] = min(seen["idle"], idle)
        return list(found.values())

    def forget_consumer(self, queue: str, consumer: str) -> None:
        """Remove a consumer (that holds no lease) from a queue's groups."""
        for stream in self.keys.streams(queue):
            with contextlib.suppress(ResponseError):  # no group (the queue was cleared): nothing to forget
                self._redis.xgroup_delconsumer(stream, GROUP, consumer)

    # -- pausing ----------------------------------------------------------------------------------

    def pause(self, queue: str) -> None:
        """Pause ``queue`` for every worker until :meth:`resume`: workers look at the flag with each batch
        they fetch (and at most ``PAUSES_FRESH_S`` apart) and hand a paused queue's leases back to its
        front unstarted. Its jobs stay queued; producers go on."""
        self.connection.with_retry(lambda: self._redis.set(self.keys.paused(queue), now_ms()))

    def resume(self, queue: str) -> None:
        """Let workers start the jobs of ``queue`` again."""
        self.connection.with_retry(lambda: self._redis.delete(self.keys.paused(queue)))

    def paused(self, queues: Sequence[str]) -> set[str]:
        """Which of ``queues`` are paused, in one round trip."""
        return self.look(queues)[0]

    def look(self, queues: Sequence[str]) -> tuple[set[str], dict[str, list[int]]]:
        """Which of ``queues`` are paused, and the priorities above 0 of each (see :meth:`levels`), in one
        round trip: what a worker reads with each batch."""
        if not queues:
            return set(), {}
        pipe = self._redis.pipeline(transaction=False)
        for queue in queues:
            pipe.exists(self.keys.paused(queue))
            pipe.smembers(self.keys.levels(queue))
        replies = pipe.execute()
        paused = {queue for i, queue in enumerate(queues) if replies[2 * i]}
        levels = {
            queue: sorted(int(p) for p in replies[2 * i + 1]) for i, queue in enumerate(queues) if replies[2 * i + 1]
        }
        return paused, levels

    # -- groups -----------------------------------------------------------------------------------

    def group_weight(self, queue: str, group: str, weight: float) -> None:
        """Serve ``group`` in ``queue`` ``weight`` times as often as a group of weight 1 (its jobs enqueued
        from now on are scored by it)."""
        self.connection.with_retry(lambda: self._redis.hset(self.keys.group_weights(queue), group, repr(float(weight))))

    def group_limits(self, queue: str, group: str, concurrency: int | None, rate: tuple[int, int] | None) -> None:
        """Give ``group`` in ``queue`` limits of its own (None and None: none): at most ``concurrency`` of
        its jobs running at once, at most ``rate`` (starts, window ms) starts per window. They apply to the
        group's jobs handed out from now on, in place of a task's own concurrency or rate limit."""
        key = self.keys.group_limits(queue)
        limits: dict[str, Any] = {}
        if concurrency is not None:
            limits["c"] = concurrency
        if rate is not None:
            limits["r"] = list(rate)
        if limits:
            self.connection.with_retry(lambda: self._redis.hset(key, group, pack(limits)))
        else:
            self.connection.with_retry(lambda: self._redis.hdel(key, group))

    def pause_group(self, queue: str, group: str) -> None:
        """Stop handing out the jobs of ``group`` in ``queue`` (they are set aside, in their order) until
        :meth:`resume_group`; the queue's other groups go on."""
        self.connection.with_retry(lambda: self._redis.hset(self.keys.paused_groups(queue), group, now_ms()))

    def resume_group(self, queue: str, group: str) -> int:
        """Serve ``group`` in ``queue`` again; returns how many of its jobs went back in line."""
        pattern = "".join("\\" + c if c in "*?[]\\" else c for c in group) + "|*"
        return int(
            self.connection.with_retry(
                lambda: self.connection.script("group_resume", self.keys.groups(queue), [group, pattern])
            )
        )

    # -- scheduled jobs ---------------------------------------------------------------------------

    def promote(self, queue: str, now: int | None = None, limit: int = 1000) -> tuple[int, int | None]:
        """Move due jobs of ``queue`` from its scheduled set into the queue.

        Returns:
            ``(moved, next_due_ms)``; ``next_due_ms`` is None when nothing else is scheduled.
        """
        k, at = self.keys, now_ms() if now is None else now
        scheduled = k.scheduled(queue)

        def look(pipe: Pipeline) -> None:
            pipe.zrangebyscore(scheduled, "-inf", at, start=0, num=limit)
            pipe.zrange(scheduled, 0, 0, withscores=True)

        due, first = self.connection.pipeline(look)
        if not due:  # nothing due: no script; the earliest due time as read
            return 0, (int(first[0][1]) if first else None)
        ids = [text(job_id) for job_id in due]
        keys = [scheduled, k.levels(queue), *k.priority_streams(queue), *k.groups(queue)]
        keys += [k.job(queue, job_id) for job_id in ids]
        args = [at, self.connection.listened(k.events), GROUP, *ids]
        moved, nxt = self.connection.script("promote", keys, args)
        return int(moved), (None if int(nxt) < 0 else int(nxt))

    def run_now(self, queue: str, job_id: str) -> tuple[bool, JobStatus | None]:
        """Move one scheduled (or retrying) job into its queue now, whatever its due time.

        Returns:
            ``(moved, status)``: the status after the call, or the one that prevented the move (None: no
            such job).
        """
        k, c = self.keys, self.connection
        moved, status = c.with_retry(
            lambda: c.script(
                "run_now",
                [k.scheduled(queue), k.queue(queue), k.job(queue, job_id)],
                [job_id, now_ms(), c.listened(k.events)],
            )
        )
        return bool(moved), status_of(status)

    def known(self) -> list[str]:
        """Every queue name ever used in this namespace, sorted."""
        return sorted(text(q) for q in self._redis.smembers(self.keys.queues))


#: The fields of a resq stream entry: the job id, its envelope while it waits in the stream, and its flow
#: control (``resq/flow.py``) when it has any.
ENTRY_FIELDS = frozenset((b"id", b"envelope", b"flow"))
#: The longest job id a worker takes from a stream entry, in bytes (longer ones make it foreign).
MAX_ID_BYTES = 1024


def _unwrapped(marks: list[tuple[int, Outcome]], replies: list[Any]) -> list[HandedOff]:
    """Take the hand-off entries out of the replies of outcome scripts (in place: each reply as the
    script meant it); returns them."""
    return _entries_of([(index, o.delivery.queue, o.job_id) for index, o in marks], replies)


def _entries_of(spots: Iterable[tuple[int, str, str]], replies: list[Any]) -> list[HandedOff]:
    """:func:`_unwrapped` for the replies at ``spots`` (index, the job's queue, its id)."""
    handed = []
    for index, queue, job_id in spots:
        replies[index], entry = unwrap(replies[index])
        if entry is not None:
            handed.append(HandedOff(queue, job_id, entry))
    return handed


def _log_refused(marks: list[tuple[int, Outcome]], replies: list[Any]) -> tuple[Outcome, ...]:
    """Log each outcome an outcome script refused (-1): its worker's lease was stale (the job was given
    back since, and may run elsewhere), so nothing of it was recorded. Returns them."""
    refused = tuple(outcome for index, outcome in marks if replies[index] == -1)
    for outcome in refused:
        d = outcome.delivery
        log.warning(
            "stale_outcome_refused",
            job_id=outcome.job_id,
            queue=d.queue,
            entry=d.entry,
            outcome=type(outcome).__name__.lower(),
        )
    return refused


def _carried(delivery: Delivery) -> bytes:
    """The envelope ``delivery``'s stream entry carried (b"" when it had none, or is not known here: the
    scripts then read the entry itself, ``_lib.lua``)."""
    return delivery.fields.get(b"envelope", b"")


def _delivery(
    queue: str,
    entry: bytes | str,
    fields: dict[bytes, bytes] | None,
    front: bool = False,
    fetched_ms: int = 0,
    priority: int = 0,
) -> Delivery:
    fields = fields or {}
    return Delivery(queue, text(entry), _job_id(fields), fields, front, priority, fetched_ms)


def _job_id(fields: dict[bytes, bytes]) -> str | None:
    """The job id of a resq entry; None for anything else (a foreign entry, set aside as dead): other
    fields, an id that is empty, not UTF-8, or over ``MAX_ID_BYTES``."""
    raw_id = fields.get(b"id")
    if not raw_id or len(raw_id) > MAX_ID_BYTES or not fields.keys() <= ENTRY_FIELDS:
        return None
    try:
        return raw_id.decode("utf-8")
    except UnicodeDecodeError:
        return None
