"""The one enqueue path: every producer of a job goes through :func:`enqueue` or :func:`requeue`.

New jobs: ``Task.delay``/``apply_async``/``enqueue_in``/``enqueue_at``, ``resq enqueue`` (the
Inspector, by task name), the scheduler's cron ticks and ``resq cron run``. For each, in this order:
the ``before_enqueue`` hooks (which may change the job's queue, args, kwargs and meta, or raise ``Veto``),
the sealing of an encrypted task's arguments (``resq.sealing``, after the hooks: they see them in
clear), the encoding (``EncodeError``/``PayloadTooLarge`` enqueue nothing), the ``enqueue`` script, one log line,
and the ``after_enqueue`` hooks when a job was created (not for a duplicate id).

In eager mode (``Resq(eager=True)``, ``resq.testing.eager(app)``) the app holds an :class:`InlineRunner`:
the same path runs, hooks and encoding included, but the runner keeps the record in memory instead of
the ``enqueue`` script, and performs the job in the caller right after ``after_enqueue``. The runner
lives above this layer (it uses the worker's executor); the producer only calls it.

Jobs already in Redis that go back into their queue (a dead job retried, a scheduled job run now) are
not new: their arguments were fixed when they were created, so ``before_enqueue`` does not run again;
``after_enqueue`` runs, as for every job that enters a queue.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from itertools import islice
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from resq.broker.queues import NewJob
from resq.clock import now_ms
from resq.codec import Envelope, encode_envelope
from resq.flow import Flow, expiry_ms, limit_key
from resq.job import Job, JobStatus, JobStore, new_job_id
from resq.log import get_logger
from resq.sealing import keyring, seal_envelope
from resq.settings import validate_name

if TYPE_CHECKING:
    from resq.app import Resq

__all__ = [
    "CHUNK",
    "Call",
    "Enqueued",
    "InlineRunner",
    "aenqueue",
    "enqueue",
    "enqueue_many",
    "enqueue_prepared",
    "job_flow",
    "prepare",
    "requeue",
    "revive",
    "run_now",
]

log = get_logger("resq.producer")


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

    In eager mode (``app.inline``), the job runs here before this returns, and the status is its final one.

    Raises:
        Veto: a ``before_enqueue`` hook refused the job (nothing is enqueued).
        ConfigError: a hook set an invalid queue name; a key function failed.
        EncodeError, PayloadTooLarge: the job cannot be encoded (nothing is enqueued).
        BrokerUnavailable: Redis could not be reached after a bounded retry.
    """
    envelope, raw, flow = _prepare(
        app, task, args, kwargs, queue, job_id=job_id, meta=meta, priority=priority, expires_ms=expires_ms
    )
    return enqueue_prepared(app, envelope, raw, due_ms=due_ms, if_absent=if_absent, flow=flow)


def enqueue_prepared(
    app: Resq, envelope: Envelope, raw: bytes, *, due_ms: int = 0, if_absent: bool = False, flow: Flow | None = None
) -> Enqueued:
    """Store a job made by :func:`prepare` earlier (its ``before_enqueue`` hooks ran, its arguments are
    sealed and encoded in ``raw``): the second half of :func:`enqueue`, for the SQLAlchemy outbox's relay.
    ``after_enqueue`` runs when a job was created.

    Args:
        flow: the job's flow control (default: its task's, from the envelope: see :func:`job_flow`).

    Raises:
        BrokerUnavailable: Redis could not be reached after a bounded retry.
    """
    inline, task = app.inline, envelope.task
    flow = job_flow(app, envelope) if flow is None else flow
    if inline is None:
        status, created = app.broker.queues.enqueue(
            envelope.queue, envelope.id, task, raw, due_ms, if_absent=if_absent, flow=flow
        )
    else:
        status, created = inline.submit(envelope, raw, if_absent=if_absent)  # eager: the due time is ignored
    return _after_enqueue(app, envelope, task, status, created, due_ms)


def job_flow(app: Resq, envelope: Envelope, priority: int | None = None, expires_ms: int = 0) -> Flow:
    """The flow control of a job (``resq.flow``): its task's options, for these arguments, with the
    call's ``priority`` and ``expires_ms`` first. A sealed envelope's arguments are not read: its keys are
    the task's name alone.

    Raises:
        ConfigError: a key function failed or returned no usable key.
    """
    known = app.tasks.get(envelope.task)
    if known is None:
        return Flow(priority=priority or 0, expires_ms=expires_ms)
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
    )


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
    envelope, raw, flow = _prepare(app, task, args, kwargs, queue, job_id=job_id, **flow_options)
    status, created = await app.broker.queues.aenqueue(envelope.queue, envelope.id, task, raw, due_ms, flow=flow)
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
    return Enqueued(job, status, created)


#: Jobs per script call (and round trip) of a bulk enqueue.
CHUNK = 500


class Call(NamedTuple):
    """One job of a bulk enqueue: its task's name, arguments, queue and due time (ms; 0: now)."""

    task: str
    args: Sequence[Any] = ()
    kwargs: dict[str, Any] | None = None
    queue: str = "default"
    due_ms: int = 0


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
        envelope, raw, flow = _prepare(app, call.task, call.args, call.kwargs, call.queue)
        by_queue.setdefault(envelope.queue, []).append(NewJob(envelope.id, call.task, raw, call.due_ms, flow))
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
) -> tuple[Envelope, bytes, Flow]:
    """A new job's envelope, as the ``before_enqueue`` hooks leave it (its arguments sealed when the task
    is encrypted), its encoded form, and its flow control (from its arguments in clear).

    Raises:
        ConfigError: the task is encrypted and the app holds no key (or ``cryptography`` is missing); a
            key function failed.
    """
    envelope = Envelope(
        id=job_id or new_job_id(),
        task=task,
        queue=queue,
        args=list(args),
        kwargs=dict(kwargs or {}),
        created_ms=now_ms(),
        meta=dict(meta or {}),
    )
    envelope = _before_enqueue(app, envelope)
    flow = job_flow(app, envelope, priority, expires_ms)
    if _encrypts(app, envelope.task):
        envelope = seal_envelope(envelope, keyring(app.settings.encryption_keys))
    return envelope, encode_envelope(envelope, app.settings.max_payload_bytes), flow


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
    envelope, raw, _ = _prepare(app, task, args, kwargs, queue, job_id=job_id)
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
