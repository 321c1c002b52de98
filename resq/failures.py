"""The one failure path: an attempt that ended without the task returning becomes one outcome here.

Whoever records the outcome calls :func:`failed_attempt`: the child for an exception or a time limit
it caught itself, the supervisor for a child it killed past the hard limit, and the reaper (in any
worker or scheduler) for a job whose worker died. Each time, in that process: the log line, the
``on_failure`` hooks, then ``on_retry`` or ``on_dead``, and an outcome that carries the task's name (its
counters are filed under it).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

from resq.app import Resq
from resq.clock import now_ms, to_ms
from resq.codec import pack
from resq.errors import ArgumentsError, EncodeError, Retry
from resq.job import Job
from resq.log import get_logger
from resq.outcomes import Dead, Delivery, Lost, Outcome, Retried
from resq.retry import to_seconds
from resq.task import Task

__all__ = [
    "CancelInterrupt",
    "JobInterrupted",
    "TimeLimitExceeded",
    "WorkerLost",
    "error_record",
    "failed_attempt",
    "failure_record",
    "retry_delay",
    "task_hook",
]

log = get_logger("resq.worker")


class JobInterrupted(BaseException):
    """Stops a running task from outside (USR1, cancellation). A BaseException, so that a task's
    ``except Exception`` does not swallow it."""

    def __init__(self, reason: str = "interrupted") -> None:
        super().__init__(reason)
        self.reason = reason


class CancelInterrupt(JobInterrupted):
    """Stops a running task whose cancellation was asked for (``job.cancel()``)."""

    def __init__(self) -> None:
        super().__init__("cancelled")


class WorkerLost(JobInterrupted):
    """The process running the attempt died (killed, crashed, or silent for three heartbeats)."""

    def __init__(self, reason: str = "worker lost") -> None:
        super().__init__(reason)


class TimeLimitExceeded(JobInterrupted):
    """The hard ``timeout`` of a task elapsed."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"timeout after {seconds:g} s")
        self.seconds = seconds


def error_record(exc: BaseException | None, type_name: str = "", message: str = "", tb: str = "") -> bytes:
    """The stored form of an error: type, message and traceback as text, never an exception object."""
    if exc is not None:
        type_name = type_name or f"{type(exc).__module__}.{type(exc).__qualname__}".removeprefix("builtins.")
        message = message or str(exc)
        tb = tb or "".join(traceback.format_exception(exc))
    return pack({"type": type_name, "message": message, "traceback": tb})


def failure_record(exc: BaseException) -> tuple[str, bytes]:
    """The reason (for logs) and the stored error of a failed attempt."""
    if isinstance(exc, WorkerLost):
        return exc.reason, error_record(None, "WorkerLost", exc.reason)
    if isinstance(exc, JobInterrupted):
        type_name = "TimeoutError" if isinstance(exc, TimeLimitExceeded) else "JobInterrupted"
        return exc.reason, error_record(exc, type_name, exc.reason)
    return f"{type(exc).__name__}: {exc}", error_record(exc)


def retry_delay(task: Task[Any, Any], attempt: int, exc: BaseException) -> float | None:
    """Seconds before the next attempt, or None when this failure is final."""
    options = task.options
    if attempt > options.retries or isinstance(exc, (EncodeError, ArgumentsError)):
        return None  # no attempts left; an unencodable result or mismatched arguments fail the same way every time
    if isinstance(exc, Retry):
        return max(0.0, to_seconds(exc.delay)) if exc.delay is not None else options.backoff(attempt)  # type: ignore[arg-type]
    if isinstance(exc, (JobInterrupted, *options.retry_on)):
        return max(0.0, options.backoff(attempt))
    return None


def failed_attempt(
    app: Resq,
    task: Task[Any, Any] | None,
    job: Job[Any],
    delivery: Delivery,
    exc: BaseException,
    duration_ms: int,
    *,
    losses: int = 0,
) -> Outcome:
    """Classify a failed attempt, run its hooks, and return the outcome to record.

    Args:
        app: the app (its hooks and settings).
        task: the job's task, None when this process does not register it (app hooks still run).
        job: the job (its id, task name and attempt).
        delivery: the lease of the attempt.
        exc: why it failed; :class:`WorkerLost` when the process running it died.
        duration_ms: how long the attempt ran.
        losses: for a lost worker, how many times the job lost its worker before.
    """
    hooks = app.hooks
    reason, error = failure_record(exc)
    log.warning("failed", duration_ms=duration_ms, error=reason, exc_info=not isinstance(exc, JobInterrupted))
    hooks.run("on_failure", job, exc, job=job, extra=task_hook(task, "on_failure"))
    outcome: Outcome
    if isinstance(exc, WorkerLost):
        final = losses + 1 >= app.settings.max_worker_losses
        outcome = Lost(delivery, job.id, error, duration_ms, task=job.task, final=final)
        delay: float | None = None if final else 0.0
    else:
        delay = retry_delay(task, job.attempt, exc) if task is not None else None
        outcome = (
            Dead(delivery, job.id, error, duration_ms, task=job.task)
            if delay is None
            else Retried(delivery, job.id, error, now_ms() + to_ms(delay), duration_ms, task=job.task)
        )
    if delay is None:
        hooks.run("on_dead", job, exc, job=job, extra=task_hook(task, "on_dead"))
        log.error("dead", duration_ms=duration_ms, reason=reason)
    else:
        hooks.run("on_retry", job, exc, job=job, extra=task_hook(task, "on_retry"))
        log.info("retrying", duration_ms=duration_ms, delay_s=round(delay, 3), next_attempt=job.attempt + 1)
    return outcome


def task_hook(task: Task[Any, Any] | None, name: str) -> tuple[Callable[..., Any], ...]:
    """The task's own hook for ``name`` as the ``extra`` of :meth:`resq.hooks.Hooks.run` (empty if none)."""
    hook = None if task is None else task.options.hooks.get(name)
    return () if hook is None else (hook,)
