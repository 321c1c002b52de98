"""Helpers for testing code that uses resq: run jobs in the test's own process, with or without Redis.

``drain`` performs the queued jobs against a real Redis, as a worker would::

    def test_signup_sends_a_welcome_mail(app):
        signup("ada@example.com")            # calls send_welcome.delay(...)
        assert resq.testing.drain(app) == 1   # performs it here, with hooks, retries and results
        assert outbox == ["ada@example.com"]

``eager`` (or ``Resq(..., eager=True)``) needs no Redis at all: ``.delay()`` performs the job in the
caller before it returns, and the job's record is kept in memory::

    def test_signup_sends_a_welcome_mail(app):
        with resq.testing.eager(app):
            job = send_welcome.delay("ada@example.com")
        assert job.status() == "succeeded"

Eager jobs take the worker's path: the envelope is encoded and decoded (an argument msgpack cannot
carry raises ``EncodeError``; tuples arrive as lists), the task is looked up by name, every hook runs,
and the outcome is classified by the worker's executor and the one failure path (``resq.failures``).
Retries run at once, one after the other; delays (``enqueue_in``, ``enqueue_at``, backoff,
``Retry(delay=…)``) and time limits are ignored, as in Celery's eager mode.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import secrets
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from resq.app import Resq
from resq.clock import now_ms
from resq.codec import Envelope, decode_envelope, decode_event, pack, unpack
from resq.errors import DecodeError
from resq.job import ACTIVE_STATUSES, TERMINAL_STATUSES, Job, JobStatus, decode_progress
from resq.outcomes import Cancelled, Dead, Delivery, NextStep, Outcome, Retried, Started, Succeeded
from resq.worker.consumer import Consumer
from resq.worker.executor import Executor, run_coroutine

__all__ = ["EagerJobs", "EagerRunner", "drain", "eager"]

#: The worker id eager attempts are recorded under (``info()["worker"]``).
EAGER_WORKER = "eager"


def drain(app: Resq, queues: Sequence[str] | None = None, *, prefetch: int = 100) -> int:
    """Perform the jobs of ``queues`` in this process until the queues are empty.

    Jobs run exactly as in a worker (hooks, time limits, retries, results, dead set), one after the
    other. Retries and delayed jobs due within 10 seconds are waited for, like ``resq worker --burst``.

    Args:
        app: the app whose tasks may run.
        queues: the queues to drain, in priority order (default: every queue of the app's tasks).
        prefetch: jobs leased per fetch.

    Returns:
        How many jobs were performed.
    """
    names = list(queues) if queues else sorted({task.queue for task in app.tasks.values()} or {"default"})
    worker_id = f"testing:{os.getpid()}:{secrets.token_hex(3)}"
    broker = app.broker
    broker.queues.ensure_groups(names)
    broker.workers.register(worker_id, {"host": "testing", "pid": str(os.getpid()), "queues": ",".join(names)})
    consumer = Consumer(app, worker_id, names, prefetch=prefetch, burst=True)
    try:
        consumer.run()
    finally:
        broker.workers.unregister([worker_id])
        for name in names:
            broker.queues.forget_consumer(name, worker_id)
    return consumer.state.processed


@contextlib.contextmanager
def eager(app: Resq) -> Iterator[EagerRunner]:
    """Within the block, ``.delay()`` and friends perform each job in the caller, without Redis.

    Job handles (``status()``, ``result()``, ``info()``, ``cancel()``, ``app.job(id)``) read the
    in-memory records while the block lasts; the runner yielded holds them (``runner.jobs``). The app
    goes back to what it was (Redis, or ``eager=True``) at the end of the block.
    """
    runner = EagerRunner(app)
    previous = app.use_inline(runner)
    try:
        yield runner
    finally:
        app.use_inline(previous)


class EagerJobs:
    """The records of eager jobs, in memory, with the fields of the Redis job hash (a ``JobStore``)."""

    def __init__(self) -> None:
        self._records: dict[tuple[str, str], dict[str, bytes]] = {}
        self._history: dict[tuple[str, str], list[bytes]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._records)

    def create(self, envelope: Envelope, raw: bytes, *, if_absent: bool) -> tuple[JobStatus | None, bool]:
        """Record a new queued job, as the ``enqueue`` script does (a live job with its id is left alone)."""
        key = (envelope.queue, envelope.id)
        with self._lock:
            existing = self._records.get(key)
            if existing is not None and (if_absent or _status(existing) in ACTIVE_STATUSES):
                return _status(existing), False
            self._records[key] = {
                "envelope": raw,
                "task": envelope.task.encode(),
                "queue": envelope.queue.encode(),
                "attempt": b"0",
                "enqueued_ms": str(now_ms()).encode(),
                "status": JobStatus.QUEUED.encode(),
            }
            self._history[key] = []
            self._note(key, "enqueued")
        return JobStatus.QUEUED, True

    def start(self, queue: str, job_id: str) -> int:
        """Mark the job running for its next attempt, as ``start.lua`` does; returns the attempt's number."""
        key = (queue, job_id)
        with self._lock:
            record = self._records[key]
            attempt = int(record["attempt"]) + 1
            started = str(now_ms()).encode()
            record.update(status=JobStatus.RUNNING.encode(), attempt=str(attempt).encode(), started_ms=started)
            record["worker"] = EAGER_WORKER.encode()
            record.setdefault("first_started_ms", started)
            self._note(key, "started", worker=EAGER_WORKER)
        return attempt

    def apply(self, queue: str, outcome: Outcome) -> JobStatus:
        """Record an attempt's outcome, as the worker's scripts do; returns the job's new status."""
        key = (queue, outcome.job_id)
        now = str(now_ms()).encode()
        with self._lock:
            record = self._records[key]
            if isinstance(outcome, Succeeded):
                record.update(status=b"succeeded", result=outcome.result, finished_ms=now)
                record["duration_ms"] = str(outcome.duration_ms).encode()
                self._note(key, "succeeded", duration_ms=outcome.duration_ms)
            elif isinstance(outcome, Retried | Dead):
                self._failed(key, record, outcome, now)
            elif isinstance(outcome, Cancelled):
                record.update(status=b"cancelled", finished_ms=now, cancel_reason=outcome.reason.encode())
                self._note(key, "cancelled", reason=outcome.reason)
            return _status(record) or JobStatus.DEAD

    def _failed(self, key: tuple[str, str], record: dict[str, bytes], outcome: Retried | Dead, now: bytes) -> None:
        error = _error_text(outcome.error)
        record.update(error=outcome.error, duration_ms=str(outcome.duration_ms).encode())
        if isinstance(outcome, Retried):
            record.update(status=b"retrying", failed_ms=now, due_ms=str(outcome.due_ms).encode())
            self._note(key, "failed", duration_ms=outcome.duration_ms, error=error)
            self._note(key, "retrying", due_ms=outcome.due_ms)
            return
        record.update(status=b"dead", finished_ms=now)
        if outcome.failed_attempt:
            self._note(key, "failed", duration_ms=outcome.duration_ms, error=error)
        self._note(key, "dead", error=error)

    def _note(self, key: tuple[str, str], event: str, **extra: Any) -> None:
        """Append a lifecycle event (the fields ``resq_note`` writes in Redis); the lock is held."""
        record = self._records[key]
        self._history[key].append(
            pack(
                {
                    "event": event,
                    "job_id": key[1],
                    "task": record["task"].decode(),
                    "queue": key[0],
                    "attempt": int(record["attempt"]),
                    "at_ms": now_ms(),
                    **extra,
                }
            )
        )

    # -- what Job handles read (the JobStore protocol) ------------------------------------------------

    def find_queue(self, job_id: str) -> str | None:
        """The queue of the eager job ``job_id`` (the first one, by name, if several queues hold it)."""
        with self._lock:
            return min((queue for queue, jid in self._records if jid == job_id), default=None)

    def fields(self, queue: str, job_id: str) -> dict[str, bytes]:
        """Every field of the job's record (empty when unknown)."""
        with self._lock:
            return dict(self._records.get((queue, job_id), {}))

    def history(self, queue: str, job_id: str) -> list[dict[str, Any]]:
        """The job's lifecycle events, oldest first."""
        with self._lock:
            return [decode_event(raw) for raw in self._history.get((queue, job_id), [])]

    def status(self, queue: str, job_id: str) -> JobStatus | None:
        """The job's status, or None when unknown."""
        with self._lock:
            record = self._records.get((queue, job_id))
            return None if record is None else _status(record)

    def wait_done(self, queue: str, job_id: str, timeout_s: float | None) -> bool:
        """Whether the job is final: eager jobs are final when ``.delay()`` returns, so nothing waits."""
        return self.status(queue, job_id) in TERMINAL_STATUSES

    def cancel(self, queue: str, job_id: str) -> JobStatus | None:
        """Eager jobs are final (or running, inside their own task): nothing to cancel; their status."""
        return self.status(queue, job_id)

    def set_progress(self, queue: str, job_id: str, fraction: float, note: str | None) -> bool:
        """Record the progress of a running job, as the ``progress`` script does (no history entry, no
        event: eager mode publishes none); a job not running is left alone (False)."""
        with self._lock:
            record = self._records.get((queue, job_id))
            if record is None or _status(record) != JobStatus.RUNNING:
                return False
            record["progress"] = pack({"fraction": fraction, "note": note, "at_ms": now_ms()})
            return True

    def progress(self, queue: str, job_id: str) -> dict[str, Any] | None:
        """The job's last recorded progress, ``{"fraction", "note", "at_ms"}``, or None."""
        with self._lock:
            return decode_progress(self._records.get((queue, job_id), {}).get("progress"))


class EagerRunner:
    """Performs jobs in the caller, at enqueue, through the worker's executor; keeps records in memory.

    The app's ``inline`` runner in eager mode (``resq.producer.InlineRunner``). Each attempt is started,
    performed by :class:`~resq.worker.executor.Executor` (decode, task lookup, hooks, the call, the
    outcome) and recorded; a retry is performed at once, without waiting for its backoff.
    """

    def __init__(self, app: Resq) -> None:
        self.app = app
        self.jobs = EagerJobs()
        self.executor = Executor(app, _run_coroutine_inline, time_limits=False)

    def submit(self, envelope: Envelope, raw: bytes, *, if_absent: bool) -> tuple[JobStatus | None, bool]:
        """Record a new job as queued."""
        return self.jobs.create(envelope, raw, if_absent=if_absent)

    def perform(self, job: Job[Any]) -> JobStatus:
        """Run the job's attempts now, until it succeeds, is dead or is cancelled; its final status."""
        queue = job.queue
        raw = self.jobs.fields(queue, job.id)["envelope"]
        delivery = Delivery(queue, f"eager-{job.id}", job.id, {})
        while True:
            attempt = self.jobs.start(queue, job.id)
            outcome = self.executor.perform(Started(delivery, raw, attempt, JobStatus.RUNNING))
            status = self.jobs.apply(queue, outcome)
            if isinstance(outcome, Succeeded) and outcome.then is not None:
                self._next_step(job, outcome.then)
            if status != JobStatus.RETRYING:
                return status

    def _next_step(self, job: Job[Any], step: NextStep) -> None:
        """Create and run the next step of a chain, as the ``succeed`` script creates it in Redis."""
        self.jobs.create(decode_envelope(step.envelope), step.envelope, if_absent=False)
        self.perform(Job(job.app, step.job_id, step.queue, task=step.task))


def _status(record: dict[str, bytes]) -> JobStatus | None:
    raw = record.get("status")
    return None if raw is None else JobStatus(raw.decode())


def _error_text(error: bytes) -> str:
    """``type: message`` of an error record, as the history shows it."""
    try:
        value = unpack(error)
    except DecodeError:
        return ""
    return f"{value.get('type', '?')}: {value.get('message', '')}" if isinstance(value, dict) else ""


def _run_coroutine_inline(coro: Any, timeout: float | None) -> Any:
    """Run an async task's coroutine to completion: on a fresh loop, or, when the caller is itself inside
    a running event loop (an async test or view), on a fresh loop in a helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run_coroutine(coro, timeout)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="resq-eager") as pool:
        return pool.submit(run_coroutine, coro, timeout).result()
