"""The one enqueue path: every producer of a job goes through :func:`enqueue` or :func:`requeue`.

New jobs: ``Task.delay``/``apply_async``/``enqueue_in``/``enqueue_at``, ``resq enqueue`` (the
Inspector, by task name), the scheduler's cron ticks and ``resq cron run``. For each, in this order:
the ``before_enqueue`` hooks (which may change the job's queue, args, kwargs and meta, or raise ``Veto``),
the sealing of an encrypted task's arguments (``resq.sealing``, after the hooks: they see them in
clear), the encoding (``EncodeError``/``PayloadTooLarge`` enqueue nothing), the ``enqueue`` script, one log line,
and the ``after_enqueue`` hooks when a job was created (not for a duplicate id).

A unique or debounced task (``@app.task(unique=True)``, ``debounce=5``) goes through the same steps, but
is stored by the ``unique`` script (``resq.broker.unique``), which decides atomically whether the call is a
duplicate of the job holding the task's lock: then the handle returned is that job's, with
``deduplicated`` set, and no ``after_enqueue`` hook runs. Eager mode ignores uniqueness.

In eager mode (``Resq(eager=True)``, ``resq.testing.eager(app)``) the app holds an :class:`InlineRunner`:
the same path runs, hooks and encoding included, but the runner keeps the record in memory instead of
the ``enqueue`` script, and performs the job in the caller right after ``after_enqueue``. The runner
lives above this layer (it uses the worker's executor); the producer only calls it.

Jobs already in Redis that go back into their queue (a dead job retried, a scheduled job run now) are
not new: their arguments were fixed when they were created, so ``before_enqueue`` does not run again;
``after_enqueue`` runs, as for every job that enters a queue.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from itertools import islice
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from resq.broker.queues import NewJob
from resq.broker.unique import UniqueLock, UniqueReply
from resq.broker.workflows import pack_joins
from resq.clock import now_ms
from resq.codec import Envelope, encode_envelope, pack
from resq.context import _batch
from resq.errors import ConfigError
from resq.flow import Flow, expiry_ms, limit_key
from resq.job import Job, JobStatus, JobStore, new_job_id
from resq.log import get_logger
from resq.outcomes import NextStep
from resq.retry import to_seconds
from resq.sealing import keyring, open_envelope, seal_envelope
from resq.settings import validate_name
from resq.shards import pick

if TYPE_CHECKING:
    from resq.app import Resq

__all__ = [
    "CHUNK",
    "Call",
    "Enqueued",
    "InlineRunner",
    "Prepared",
    "aenqueue",
    "enqueue",
    "enqueue_many",
    "enqueue_prepared",
    "job_flow",
    "job_unique",
    "prepare",
    "prepare_callback",
    "prepare_new",
    "prepare_step",
    "requeue",
    "revive",
    "run_now",
    "store_many",
]

log = get_logger("resq.producer")

#: The key of a job's ``meta`` naming the batch it belongs to (the jobs it enqueues join it too).
BATCH_META = "batch"


class InlineRunner(Protocol):
    """Performs jobs in the caller instead of sending them to Redis (eager mode), and keeps their records.

    The implementation is :class:`resq.testing.EagerRunner`; an app finds it through ``app.inline``.
    """

    @property
    def jobs(self) -> JobStore:
        """The records of the jobs it ran, read by :class:`~resq.Job` handles."""

    def submit(self, envelope: Envelope, raw: bytes, *, if_absent: bool) -> tuple[JobStatus | None, bool]:
        """Record a new job as queued; returns ``(status, created)`` like the ``enqueue`` script."""

    def perform(self, job: Job[Any]) -> JobStatus:
        """Run the job's attempts now, retries included, and return its final status."""


class Enqueued:
    """What :func:`enqueue` did: the job's handle, its status, and whether this call created it."""

    __slots__ = ("created", "job", "status")

    def __init__(self, job: Job[Any], status: JobStatus | None, created: bool) -> None:
        self.job = job
        self.status = status
        self.created = created


def enqueue(
    app: Resq,
    task: str,
    args: Sequence[Any] = (),
    kwargs: dict[str, Any] | None = None,
    *,
    queue: str,
    due_ms: int = 0,
    job_id: str | None = None,
    meta: dict[str, Any] | None = None,
    if_absent: bool = False,
    priority: int | None = None,
    expires_ms: int = 0,
    group: str | None = None,
    joins: Sequence[tuple[str, int]] = (),
) -> Enqueued:
    """Create a job of ``task`` and put it in ``queue`` (or its scheduled set when ``due_ms`` is later).

    Args:
        app: the app (its hooks, settings and broker).
        task: the task's registered name (an unknown name is sent as is: the worker decides).
        args, kwargs: the task's arguments.
        queue: a valid queue name.
        due_ms: when to run it (ms since the epoch; 0: now).
        job_id: the job's id (an idempotency key); a new id by default.
        meta: what travels with the job besides its arguments (``{"periodic": entry}`` for cron ticks).
        if_absent: create the job only if no record of ``job_id`` exists, even a finished one.
        priority: instead of the task's own (0 to 9).
        expires_ms: when the job expires if not started (ms since the epoch); 0: the task's ``expires_in``.
        group: the group it belongs to (fair queuing between a queue's groups), or None.
        joins: the joins it is a member of (``resq/canvas.py``: a chord's id and its index there); inside
            ``with app.batch()`` or a running job of a batch it joins the batch too.

    In eager mode (``app.inline``), the job runs here before this returns, and the status is its final one.

    Raises:
        Veto: a ``before_enqueue`` hook refused the job (nothing is enqueued).
        ConfigError: a hook set an invalid queue name; a key function failed.
        EncodeError, PayloadTooLarge: the job cannot be encoded (nothing is enqueued).
        BrokerUnavailable: Redis could not be reached after a bounded retry.
    """
    flow_options: dict[str, Any] = {"priority": priority, "expires_ms": expires_ms, "group": group}
    scope = _batch.get()
    if job_id is None and scope is not None and app.inline is None:
        job_id = scope.nested_id()
        if_absent = if_absent or job_id is not None  # run again after a kill, the job adds no nested job twice
    prepared = _prepare(app, task, args, kwargs, queue, job_id=job_id, meta=meta, joins=joins, **flow_options)
    return _store(app, prepared, due_ms, if_absent)


def enqueue_prepared(
    app: Resq, envelope: Envelope, raw: bytes, *, due_ms: int = 0, if_absent: bool = False, flow: Flow | None = None
) -> Enqueued:
    """Store a job made by :func:`prepare` earlier (its ``before_enqueue`` hooks ran, its arguments are
    sealed and encoded in ``raw``): the second half of :func:`enqueue`, for the SQLAlchemy outbox's relay.
    ``after_enqueue`` runs when a job was created.

    Args:
        flow: the job's flow control (default: its task's, from the envelope: see :func:`job_flow`).

    A unique or debounced task's key is computed from the envelope's arguments, opened with the app's
    keys when they are sealed.

    Raises:
        ConfigError: a unique task's key function failed.
        DecryptError: the task is unique or debounced, and its sealed arguments cannot be opened.
        BrokerUnavailable: Redis could not be reached after a bounded retry.
    """
    flow = job_flow(app, envelope) if flow is None else flow
    clear = envelope
    if envelope.sealed is not None and _unique_options(app, envelope.task):
        clear = open_envelope(envelope, envelope.id, keyring(app.settings.encryption_keys))
    return _store(app, Prepared(envelope, raw, flow, job_unique(app, clear), clear, b""), due_ms, if_absent)


def _store(app: Resq, prepared: Prepared, due_ms: int, if_absent: bool) -> Enqueued:
    """Store a prepared job (the ``enqueue`` or the ``unique`` script; eager mode's runner), then run
    the bookkeeping of :func:`_after_enqueue`."""
    inline, (envelope, raw, flow, unique, _, joins) = app.inline, prepared
    task = envelope.task
    if inline is not None:
        status, created = inline.submit(envelope, raw, if_absent=if_absent)  # eager: the due time is ignored
    elif unique is not None:
        new = NewJob(envelope.id, task, raw, due_ms, flow)
        reply = app.broker.unique.enqueue(
            envelope.queue, new, unique, if_absent=if_absent, envelope_for=prepared.envelope_for(app)
        )
        return _after_unique(app, envelope, reply, due_ms)
    else:
        status, created = app.broker.queues.enqueue(
            envelope.queue, envelope.id, task, raw, due_ms, if_absent=if_absent, flow=flow, joins=joins
        )
    return _after_enqueue(app, envelope, task, status, created, due_ms)


def job_flow(
    app: Resq, envelope: Envelope, priority: int | None = None, expires_ms: int = 0, group: str | None = None
) -> Flow:
    """The flow control of a job (``resq.flow``): its task's options, for these arguments, with the
    call's ``priority`` and ``expires_ms`` first. A sealed envelope's arguments are not read: its keys are
    the task's name alone.

    Raises:
        ConfigError: a key function failed or returned no usable key.
    """
    known = app.tasks.get(envelope.task)
    if known is None:
        return Flow(priority=priority or 0, expires_ms=expires_ms, group=group)
    o, name = known.options, known.name
    concurrency_key = rate_key = None
    arguments: dict[str, Any] = {}
    if envelope.sealed is None and (o.concurrency_key is not None or o.rate_limit_key is not None):
        arguments = known.arguments_by_name(envelope.args, envelope.kwargs)
    if o.concurrency is not None:
        concurrency_key = limit_key(name, o.concurrency_key, arguments, "concurrency_key")
    if o.rate_limit is not None:
        rate_key = limit_key(name, o.rate_limit_key, arguments, "rate_limit_key")
    rate, window = o.rate_limit or (0, 0)
    return Flow(
        priority=o.priority if priority is None else priority,
        concurrency_key=concurrency_key,
        concurrency=o.concurrency or 0,
        rate_key=rate_key,
        rate=rate,
        rate_window_ms=window,
        expires_ms=expires_ms or expiry_ms(envelope.created_ms, o.expires_in, None),
        group=group,
    )


def _unique_options(app: Resq, task: str) -> bool:
    """Whether ``task`` is a unique or debounced task of this app."""
    known = app.tasks.get(task)
    return known is not None and (known.options.unique or known.options.debounce is not None)


def job_unique(app: Resq, envelope: Envelope) -> UniqueLock | None:
    """What a call of a unique or debounced task is judged by (``resq.broker.unique``), for the arguments
    of ``envelope`` (in clear); None for any other task.

    The key is the task's name, then ``:`` and what ``unique_key`` returns for the arguments (by name);
    without ``unique_key``, a debounced task's key is its name alone (one pending job per task) and a
    unique task's is its name and a digest of its arguments.

    Raises:
        ConfigError: the key function failed or returned no usable key.
    """
    known = app.tasks.get(envelope.task)
    if known is None:
        return None
    o, name = known.options, known.name
    if not o.unique and o.debounce is None:
        return None
    if o.unique_key is not None:
        try:
            arguments = known.arguments_by_name(envelope.args, envelope.kwargs)
        except TypeError as exc:
            raise ConfigError(f"unique_key of {name}: the arguments do not fit the task: {exc}") from None
        key = limit_key(name, o.unique_key, arguments, "unique_key")
    elif o.debounce is not None:
        key = name
    else:
        packed = pack([envelope.args, dict(sorted(envelope.kwargs.items()))])
        key = f"{name}:{hashlib.sha1(packed, usedforsecurity=False).hexdigest()[:16]}"
    if o.debounce is not None:
        wait_ms = max(1, round(o.debounce * 1000))
        most_ms = 0 if o.debounce_max is None else max(wait_ms, round(o.debounce_max * 1000))
        return UniqueLock(key, "debounce", debounce_ms=wait_ms, debounce_max_ms=most_ms)
    # Without unique_for a lock still goes, once no job could be waiting on it any more: after the longest
    # a finished record is kept (a lock per digest of free-form arguments must not stay forever).
    s = app.settings
    seconds = o.unique_for if o.unique_for is not None else max(to_seconds(s.result_ttl), to_seconds(s.dead_ttl))
    return UniqueLock(key, o.unique_until, ttl_ms=max(1, round(seconds * 1000)))


async def aenqueue(
    app: Resq,
    task: str,
    args: Sequence[Any] = (),
    kwargs: dict[str, Any] | None = None,
    *,
    queue: str,
    due_ms: int = 0,
    job_id: str | None = None,
    **flow_options: Any,
) -> Enqueued:
    """:func:`enqueue` for ``async`` code: the job is stored through ``redis.asyncio``, so the event loop
    is not blocked while Redis answers (the hooks and the encoding run as for :func:`enqueue`). In eager
    mode the job runs here, as :func:`enqueue` runs it.

    Raises:
        as :func:`enqueue`.
    """
    if app.inline is not None:
        return enqueue(app, task, args, kwargs, queue=queue, due_ms=due_ms, job_id=job_id, **flow_options)
    prepared = _prepare(app, task, args, kwargs, queue, job_id=job_id, **flow_options)
    envelope, raw, flow, unique, _, joins = prepared
    if unique is not None:
        new = NewJob(envelope.id, task, raw, due_ms, flow)
        reply = await app.broker.unique.aenqueue(envelope.queue, new, unique, envelope_for=prepared.envelope_for(app))
        return _after_unique(app, envelope, reply, due_ms)
    status, created = await app.broker.queues.aenqueue(
        envelope.queue, envelope.id, task, raw, due_ms, flow=flow, joins=joins
    )
    return _after_enqueue(app, envelope, task, status, created, due_ms)


def _after_enqueue(
    app: Resq, envelope: Envelope, task: str, status: JobStatus | None, created: bool, due_ms: int
) -> Enqueued:
    """The log line and the ``after_enqueue`` hooks of a job just stored (a duplicate id runs no hook);
    in eager mode, the job runs now."""
    inline = app.inline
    job: Job[Any] = Job(app, envelope.id, envelope.queue, task=task)
    log.debug(
        "enqueued",
        job_id=job.id,
        task=task,
        queue=envelope.queue,
        status=status,
        due_ms=due_ms or None,
        duplicate=not created,
        **({"eager": True} if inline is not None else {}),
    )
    if created:
        app.hooks.run("after_enqueue", job, job=job)
        if inline is not None:
            status = inline.perform(job)
            scope = _batch.get()
            if scope is not None:
                scope.eager_jobs.append(job)
    return Enqueued(job, status, created)


def _after_unique(app: Resq, envelope: Envelope, reply: UniqueReply, due_ms: int) -> Enqueued:
    """The bookkeeping of a unique or debounced task's enqueue: as :func:`_after_enqueue` for a job
    created; for a call that went to an existing job, a ``deduplicated`` log line and a handle on that
    job (its ``deduplicated`` set), without hooks."""
    if not reply.deduplicated:
        return _after_enqueue(app, envelope, envelope.task, reply.status, reply.created, reply.due_ms or due_ms)
    job: Job[Any] = Job(app, reply.job_id, envelope.queue, task=envelope.task)
    job.deduplicated = True
    log.debug(
        "deduplicated",
        job_id=envelope.id,
        task=envelope.task,
        queue=envelope.queue,
        existing=reply.job_id,
        how=reply.how,
        status=reply.status,
        due_ms=reply.due_ms or None,
    )
    return Enqueued(job, reply.status, False)


#: Jobs per script call (and round trip) of a bulk enqueue.
CHUNK = 500


class Call(NamedTuple):
    """One job of a bulk enqueue: its task's name, arguments, queue, due time (ms; 0: now) and the joins
    it is a member of (a chord's: see :func:`enqueue`)."""

    task: str
    args: Sequence[Any] = ()
    kwargs: dict[str, Any] | None = None
    queue: str = "default"
    due_ms: int = 0
    joins: tuple[tuple[str, int], ...] = ()


def enqueue_many(app: Resq, calls: Iterable[Call], *, chunk: int = CHUNK) -> list[Job[Any]]:
    """Create many jobs, ``chunk`` of one queue per script call and round trip (``task.map``,
    ``app.enqueue_many``): the same encoding, hooks and records as :func:`enqueue` for each. Each chunk
    after the first is encoded while Redis runs the one before, so a chunk's ``after_enqueue`` hooks run
    after the next chunk's ``before_enqueue`` hooks.

    Returns:
        A handle on each job, in order.

    Raises:
        Veto, ConfigError, EncodeError, PayloadTooLarge: as for :func:`enqueue`, before the chunk that
            holds the job is sent (earlier chunks are enqueued).
        BrokerUnavailable: Redis could not be reached after a bounded retry.
    """
    calls = _one_by_one(app, calls)
    if app.inline is not None:  # eager: each job runs here, one after the other
        return [enqueue(app, c.task, c.args, c.kwargs, queue=c.queue, due_ms=c.due_ms).job for c in calls]
    built = _Built(app, calls, chunk)
    jobs: list[Job[Any]] = []
    created: set[str] = set()
    for replies in app.broker.queues.enqueue_chunks(built.pieces()):
        part, batch = built.sent.popleft()
        created.update(job[0] for job, (_, new) in zip(batch, replies, strict=True) if new)
        if not built.sent or built.sent[0][0] is not part:  # every queue of the chunk answered
            jobs += _after_chunk(app, part, created)
            created = set()
    if built.error is not None:
        raise built.error
    return jobs


def _one_by_one(app: Resq, calls: Iterable[Call]) -> Iterator[Call]:
    """``calls``, refused at the first of a unique or debounced task: a bulk enqueue does not judge
    duplicates (each call of such a task is decided on its own, with the lock it reads first)."""
    judged: dict[str, bool] = {}  # task name -> unique or debounced (a bulk enqueue has few tasks)
    for call in calls:
        refused = judged.get(call.task)
        if refused is None:
            refused = judged[call.task] = _unique_options(app, call.task)
        if refused:
            raise ConfigError(f"{call.task}: unique and debounced tasks are enqueued one at a time: use delay()")
        yield call


class _Chunk(NamedTuple):
    """A chunk of a bulk enqueue, encoded: its jobs by queue, and a handle on each, in order."""

    by_queue: dict[str, list[NewJob]]
    jobs: list[Job[Any]]


class _Built:
    """The chunks of a bulk enqueue, encoded one at a time as the broker asks for the next (while Redis
    runs the one before). An error while encoding ends the chunks: it is raised once the chunks before
    it are answered (they are enqueued)."""

    def __init__(self, app: Resq, calls: Iterable[Call], size: int) -> None:
        self._app, self._parts = app, _chunks(iter(calls), size)
        #: (chunk, its jobs of one queue) sent and not yet answered, in order
        self.sent: deque[tuple[_Chunk, list[NewJob]]] = deque()
        self.error: Exception | None = None

    def pieces(self) -> Iterator[tuple[str, list[NewJob]]]:
        """Each chunk's jobs, one queue at a time (one script call each)."""
        while True:
            try:
                calls = next(self._parts, None)
                if calls is None:
                    return
                part = _prepare_chunk(self._app, calls)
            except Exception as exc:
                self.error = exc
                return
            for queue, batch in part.by_queue.items():
                self.sent.append((part, batch))
                yield queue, batch


def _chunks(calls: Iterator[Call], size: int) -> Iterator[list[Call]]:
    while part := list(islice(calls, size)):
        yield part


def _prepare_chunk(app: Resq, calls: list[Call]) -> _Chunk:
    by_queue: dict[str, list[NewJob]] = {}
    jobs: list[Job[Any]] = []
    for call in calls:
        envelope, raw, flow, _, _, joins = _prepare(
            app, call.task, call.args, call.kwargs, call.queue, joins=call.joins
        )
        new = NewJob(envelope.id, call.task, raw, call.due_ms, flow, joins)
        by_queue.setdefault(envelope.queue, []).append(new)
        jobs.append(Job(app, envelope.id, envelope.queue, task=call.task))
    return _Chunk(by_queue, jobs)


def _after_chunk(app: Resq, chunk: _Chunk, created: set[str]) -> list[Job[Any]]:
    """Log a chunk enqueued and run its new jobs' ``after_enqueue`` hooks; returns its jobs."""
    log.debug("enqueued_many", jobs=len(chunk.jobs), created=len(created), queues=sorted(chunk.by_queue))
    if app.hooks.registered("after_enqueue"):
        for job in chunk.jobs:
            if job.id in created:
                app.hooks.run("after_enqueue", job, job=job)
    return chunk.jobs


def _prepare(
    app: Resq,
    task: str,
    args: Sequence[Any],
    kwargs: dict[str, Any] | None,
    queue: str,
    *,
    job_id: str | None = None,
    meta: dict[str, Any] | None = None,
    priority: int | None = None,
    expires_ms: int = 0,
    group: str | None = None,
    joins: Sequence[tuple[str, int]] = (),
) -> Prepared:
    """A new job's envelope, as the ``before_enqueue`` hooks leave it (its arguments sealed when the task
    is encrypted), its encoded form, its flow control, its unique lock (from its arguments in clear) and
    its joins, packed (the current batch's included: its id travels in the job's ``meta``, for the jobs it
    enqueues in turn).

    Raises:
        ConfigError: the task is encrypted and the app holds no key (or ``cryptography`` is missing); a
            key function failed; a unique, debounced or grouped job would join a chord or a batch.
    """
    queue = _shard(app, task, queue, args, kwargs)
    meta = dict(meta or {})
    scope = _batch.get()
    if scope is not None:
        joins = [*joins, (scope.batch_id, -1)]
        meta[BATCH_META] = scope.batch_id
    envelope = Envelope(
        id=job_id or new_job_id(),
        task=task,
        queue=queue,
        args=list(args),
        kwargs=dict(kwargs or {}),
        created_ms=now_ms(),
        meta=meta,
    )
    clear = _before_enqueue(app, envelope)
    flow = job_flow(app, clear, priority, expires_ms, group)
    unique = job_unique(app, clear)
    if joins and (unique is not None or flow.group is not None):
        what = "a grouped job (group=)" if unique is None else "a unique or debounced task"
        raise ConfigError(f"{task}: {what} cannot join a chord, a batch or a depends_on: enqueue it outside")
    envelope, raw = _encoded(app, clear)
    return Prepared(envelope, raw, flow, unique, clear, pack_joins(joins))


def _shard(app: Resq, task: str, queue: str, args: Sequence[Any], kwargs: dict[str, Any] | None) -> str:
    """The queue a new job goes to: for a sharded task sent to its own queue, one of its shards
    (``resq.shards``); else ``queue``."""
    known = app.tasks.get(task)
    if known is None or known.options.shards <= 1 or queue != known.options.queue:
        return queue
    o = known.options
    arguments = {} if o.shard_key is None else known.arguments_by_name(args, kwargs or {})
    return pick(known.name, queue, o.shards, o.shard_key, arguments)


def _encoded(app: Resq, envelope: Envelope) -> tuple[Envelope, bytes]:
    """``envelope`` as stored (its arguments sealed when the task is encrypted), and its encoded form."""
    if _encrypts(app, envelope.task):
        envelope = seal_envelope(envelope, keyring(app.settings.encryption_keys))
    return envelope, encode_envelope(envelope, app.settings.max_payload_bytes)


class Prepared(NamedTuple):
    """A new job ready to store: its envelope as stored, its encoded form, its flow control, its unique
    lock (None: the task is neither unique nor debounced), its envelope in clear and its joins (packed)."""

    envelope: Envelope
    raw: bytes
    flow: Flow
    unique: UniqueLock | None
    clear: Envelope
    joins: bytes

    def envelope_for(self, app: Resq) -> Callable[[str], bytes] | None:
        """For a debounced call: the call's encoded envelope under another job's id (the pending job whose
        arguments it replaces), sealed for that id when the task is encrypted."""
        if self.unique is None or self.unique.mode != "debounce":
            return None
        clear = self.clear
        return lambda job_id: _encoded(app, replace(clear, id=job_id))[1]


def prepare_step(
    app: Resq, task: str, args: list[Any], kwargs: dict[str, Any], queue: str, job_id: str, meta: dict[str, Any]
) -> NextStep:
    """The next job of a chain (``resq/canvas.py``), ready for the ``succeed`` script of the step before
    it to create: the same hooks, flow control, sealing and encoding as :func:`enqueue`.

    Raises:
        as :func:`enqueue` before it stores anything (``Veto``, ``ConfigError``, ``EncodeError``, ...).
    """
    envelope, raw, flow, _, _, joins = _prepare(app, task, args, kwargs, queue, job_id=job_id, meta=meta)
    return NextStep(envelope.queue, envelope.id, task, raw, flow.priority, flow.packed(), joins)


def prepare_callback(
    app: Resq,
    task: str,
    args: Sequence[Any],
    kwargs: dict[str, Any] | None,
    queue: str,
    job_id: str,
    meta: dict[str, Any] | None = None,
    **flow_options: Any,
) -> tuple[str, NewJob]:
    """A job a join releases later (``resq/canvas.py``: a chord's callback, a batch's, a ``depends_on``),
    ready for the ``join`` script to store as ``deferred``: the same hooks, flow control, sealing and
    encoding as :func:`enqueue`. Returns its queue (as the hooks left it) and the job.

    Raises:
        as :func:`enqueue` before it stores anything.
    """
    envelope, raw, flow, unique, _, joins = _prepare(
        app, task, args, kwargs, queue, job_id=job_id, meta=meta, **flow_options
    )
    if unique is not None or flow.group is not None:
        raise ConfigError(f"{task}: a unique, debounced or grouped task cannot wait for other jobs: enqueue it alone")
    return envelope.queue, NewJob(envelope.id, task, raw, 0, flow, joins)


def prepare_new(
    app: Resq,
    task: str,
    args: Sequence[Any],
    kwargs: dict[str, Any] | None,
    queue: str,
    *,
    job_id: str | None = None,
    meta: dict[str, Any] | None = None,
) -> Prepared:
    """The first half of :func:`enqueue`, for :func:`store_many`: a new job after the ``before_enqueue``
    hooks, encoded, with its flow control and unique lock.

    Raises:
        Veto, ConfigError, EncodeError, PayloadTooLarge: as :func:`enqueue` (nothing is stored).
    """
    return _prepare(app, task, args, kwargs, queue, job_id=job_id, meta=meta)


def store_many(app: Resq, jobs: Sequence[Prepared], *, if_absent: bool = False) -> list[bool]:
    """Store jobs made by :func:`prepare_new`, the second half of :func:`enqueue` for each (its log line
    and ``after_enqueue`` hooks): those of one queue in one round trip, unique, debounced or grouped ones
    one at a time. Returns whether each was created (``if_absent``: only if no record of its id ever
    existed).

    Raises:
        ConfigError: a unique task's key function failed.
        BrokerUnavailable: Redis could not be reached after a bounded retry.
    """
    created = [False] * len(jobs)
    by_queue: dict[str, list[int]] = {}
    for i, job in enumerate(jobs):
        if job.unique is None and job.flow.group is None and app.inline is None:
            by_queue.setdefault(job.envelope.queue, []).append(i)
        else:
            created[i] = _store(app, job, 0, if_absent).created
    for queue, indexes in by_queue.items():
        new = [
            NewJob(jobs[i].envelope.id, jobs[i].envelope.task, jobs[i].raw, 0, jobs[i].flow, jobs[i].joins)
            for i in indexes
        ]
        replies = app.broker.queues.enqueue_many(queue, new, if_absent=if_absent)
        for i, (status, made) in zip(indexes, replies, strict=True):
            envelope = jobs[i].envelope
            created[i] = _after_enqueue(app, envelope, envelope.task, status, made, 0).created
    return created


def prepare(
    app: Resq,
    task: str,
    args: Sequence[Any],
    kwargs: dict[str, Any] | None,
    queue: str,
    *,
    job_id: str | None = None,
) -> tuple[Envelope, bytes]:
    """The first half of :func:`enqueue`: a new job's envelope after the hooks, and its encoded form
    (:func:`enqueue_prepared` computes its flow control again from the envelope)."""
    envelope, raw, *_ = _prepare(app, task, args, kwargs, queue, job_id=job_id)
    return envelope, raw


def _encrypts(app: Resq, task: str) -> bool:
    """Whether a job of ``task`` is sealed: the task's ``encrypt``, or the app's for a task it does not
    register."""
    known = app.tasks.get(task)
    return app.settings.encrypt if known is None else known.encrypts


def _before_enqueue(app: Resq, envelope: Envelope) -> Envelope:
    """Let ``before_enqueue`` hooks change the job's options (``job.options``) or veto it."""
    hooks = app.hooks
    hooks.load_entry_points()
    if not hooks.registered("before_enqueue"):
        return envelope
    job: Job[Any] = Job(app, envelope.id, envelope.queue, task=envelope.task)
    job.options.update(queue=envelope.queue, args=envelope.args, kwargs=envelope.kwargs, meta=envelope.meta)
    hooks.run("before_enqueue", job, job=job)
    return replace(
        envelope,
        queue=validate_name(job.options["queue"], "queue name"),
        args=list(job.options["args"]),
        kwargs=dict(job.options["kwargs"]),
        meta=dict(job.options["meta"]),
    )


def revive(app: Resq, queue: str, job_ids: Sequence[str]) -> int:
    """Queue dead jobs of ``queue`` again for a fresh series of attempts; returns how many were dead.

    ``after_enqueue`` runs for each job queued again (when any hook is registered).
    """
    revived = app.broker.jobs.revive(queue, job_ids)
    app.hooks.load_entry_points()
    if app.hooks.registered("after_enqueue"):
        for job_id in revived:
            requeue(app, queue, job_id)
    return len(revived)


def run_now(app: Resq, queue: str, job_id: str) -> tuple[bool, JobStatus | None]:
    """Move a scheduled (or retrying) job into its queue now, whatever its due time.

    Returns:
        ``(moved, status)``: the status after the call, or the one that prevented the move (None: unknown).
    """
    moved, status = app.broker.queues.run_now(queue, job_id)
    if moved:
        requeue(app, queue, job_id)
    return moved, status


def requeue(app: Resq, queue: str, job_id: str) -> None:
    """Run ``after_enqueue`` for an existing job that went back into ``queue``."""
    app.hooks.load_entry_points()
    task = app.broker.jobs.task_name(queue, job_id)  # hooks see the job's task, as for a new job
    job: Job[Any] = Job(app, job_id, queue, task=task)
    log.info("requeued", job_id=job_id, task=task, queue=queue)
    app.hooks.run("after_enqueue", job, job=job)
