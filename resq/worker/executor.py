"""Performing one attempt of a job: decode, look up the task, run hooks and the task, classify the outcome.

Returns an :class:`~resq.outcomes.Outcome` and never raises for anything the job did: a failing task,
an unknown task, an undecodable payload, sealed arguments it cannot open (``DecryptError``) or a failing
hook all become data.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from resq.app import Resq
from resq.canvas import BATCH_CALLBACK_META, CHAIN_META, CHORD_META, batch_status
from resq.clock import now_ms, to_ms
from resq.codec import Envelope, decode_envelope, pack, sealed_token, unpack
from resq.context import BatchScope, _batch, _current
from resq.errors import ConfigError, DecodeError, DecryptError, SkipJob, Snooze
from resq.failures import CancelInterrupt, JobInterrupted, TimeLimitExceeded, error_record, failed_attempt, task_hook
from resq.job import Job
from resq.log import get_logger, job_context
from resq.outcomes import TALLIES, Cancelled, Dead, Delivery, NextStep, Outcome, Retried, Started, Succeeded
from resq.producer import BATCH_META, prepare_step
from resq.retry import to_seconds
from resq.sealing import Keyring, keyring, open_envelope, open_result, seal_result
from resq.task import Task
from resq.worker.timeouts import time_limits

__all__ = ["Executor", "LoopThread", "run_coroutine"]

log = get_logger("resq.worker")


class Executor:
    """Runs attempts for one worker child.

    Args:
        app: the app whose task registry decides what may run.
        loop_runner: runs a coroutine to completion (on the child's event loop) with a hard timeout.
        time_limits: whether to enforce the tasks' ``timeout`` and ``soft_timeout`` (eager mode does not).
    """

    def __init__(
        self, app: Resq, loop_runner: Callable[[Any, float | None], Any] | None = None, *, time_limits: bool = True
    ) -> None:
        self.app = app
        self._run_coroutine = loop_runner or run_coroutine
        self._time_limits = time_limits

    def perform(self, started: Started) -> Outcome:
        """Perform one started attempt and return its outcome."""
        d = started.delivery
        job_id = str(d.job_id)
        raw, limit = started.envelope or b"", self.app.settings.max_payload_bytes
        if len(raw) > limit:  # written into Redis past the producers' check
            reason = f"envelope of {len(raw)} bytes, over max_payload_bytes ({limit})"
            log.error("dead", job_id=job_id, queue=d.queue, attempt=started.attempt, reason=reason)
            return Dead(d, job_id, error_record(None, "PayloadTooLarge", reason), 0, failed_attempt=False)
        try:
            envelope = decode_envelope(raw)
        except DecodeError as exc:
            log.error("dead", job_id=job_id, queue=d.queue, attempt=started.attempt, reason=str(exc))
            return Dead(d, job_id, error_record(exc, "DecodeError"), 0, failed_attempt=False)
        task = self.app.tasks.get(envelope.task)
        if task is None:
            reason = f"unknown task '{envelope.task}'"
            log.error("dead", job_id=job_id, task=envelope.task, queue=d.queue, attempt=started.attempt, reason=reason)
            return Dead(
                d, job_id, error_record(None, "UnknownTask", reason), 0, task=envelope.task, failed_attempt=False
            )
        keys: Keyring | None = None
        if envelope.sealed is not None or task.encrypts:
            keys = keyring(self.app.settings.encryption_keys)
            opened = self._open(task, envelope, keys, started)
            if isinstance(opened, Dead):
                return opened
            envelope = opened
        job: Job[Any] = Job(self.app, job_id, d.queue, task=task.name, attempt=started.attempt)
        job.options["meta"] = envelope.meta  # what travelled with the job, for hooks (trace context, …)
        token = _current.set(job)
        batch_id = envelope.meta.get(BATCH_META)
        scope = _batch.set(BatchScope(str(batch_id), job_id) if batch_id else None)  # its nested jobs join it
        try:
            with job_context(job_id, task.name, d.queue, started.attempt):
                return self._attempt(task, job, envelope, d, keys)
        finally:
            _batch.reset(scope)
            _current.reset(token)

    def _open(self, task: Task[Any, Any], envelope: Envelope, keys: Keyring, started: Started) -> Envelope | Dead:
        """The envelope of an encrypted job with its arguments opened, or the ``Dead`` outcome of one this
        worker cannot open (a key it does not hold, altered: ``DecryptError``) or whose result it could
        not seal (no key: ``ConfigError``). Such a job never runs, and no attempt counts."""
        d = started.delivery
        job_id = str(d.job_id)
        try:
            if keys.current is None and envelope.sealed is None:
                raise ConfigError(
                    f"task {task.name!r} is encrypted but this worker holds no encryption key "
                    "(set encryption_keys or RESQ_ENCRYPTION_KEYS)"
                )
            return open_envelope(envelope, job_id, keys, "this worker")
        except (DecryptError, ConfigError, DecodeError) as exc:
            kind = type(exc).__name__
            log.error("dead", job_id=job_id, task=task.name, queue=d.queue, attempt=started.attempt, reason=str(exc))
            return Dead(d, job_id, error_record(exc, kind), 0, task=task.name, failed_attempt=False)

    def _attempt(
        self, task: Task[Any, Any], job: Job[Any], envelope: Envelope, d: Delivery, keys: Keyring | None
    ) -> Outcome:
        """Run the attempt; ``keys`` seal the result of an encrypted task (None: it is stored in clear)."""
        hooks = self.app.hooks
        log.debug("started")
        try:
            hooks.run("before_perform", job, job=job, extra=task_hook(task, "before_perform"))
        except SkipJob as exc:
            log.info("cancelled", reason=f"skipped by before_perform: {exc}")
            return Cancelled(d, job.id, f"skipped: {exc}", task=task.name)
        began = time.monotonic()
        try:
            envelope = self._fed(envelope)
            if hooks.registered("around_perform"):
                with hooks.around_perform(job):
                    result = self._call(task, envelope)
            else:
                result = self._call(task, envelope)
            encoded = pack(result) if keys is None else seal_result(pack(result), job.id, keys)
        except Snooze as exc:
            return self._snoozed(task, job, d, exc, _elapsed_ms(began))
        except CancelInterrupt:
            log.info("cancelled", reason="cancelled while running", duration_ms=_elapsed_ms(began))
            return Cancelled(d, job.id, "cancelled while running", task=task.name)
        except (JobInterrupted, SystemExit) as exc:  # a task calling sys.exit() fails; it does not end the child
            return self._failed(task, job, d, exc, _elapsed_ms(began))
        except Exception as exc:
            return self._failed(task, job, d, exc, _elapsed_ms(began))
        duration = _elapsed_ms(began)
        hooks.run("after_perform", job, result, job=job, extra=task_hook(task, "after_perform"))
        hooks.run("on_success", job, result, job=job, extra=task_hook(task, "on_success"))
        log.info("succeeded", duration_ms=duration)
        ttl = task.options.result_ttl or self.app.settings.result_ttl
        then = self._next_step(envelope, result) if envelope.meta.get(CHAIN_META) else None
        tallies = tuple(job.options.get(TALLIES, ()))
        return Succeeded(d, job.id, encoded, to_ms(ttl), duration, task=task.name, then=then, tallies=tallies)

    def _next_step(self, envelope: Envelope, result: Any) -> NextStep | None:
        """The next step of the chain this job is a step of, built as any enqueue builds a job (hooks,
        sealing, encoding), its arguments led by ``result`` unless the step is immutable; None when it
        cannot be built (logged: the chain ends here, this step's success stands)."""
        step, *rest = envelope.meta[CHAIN_META]
        try:
            args = list(step["args"]) if step.get("immutable") else [result, *step["args"]]
            meta = {CHAIN_META: rest} if rest else {}
            built = prepare_step(self.app, step["task"], args, step["kwargs"], step["queue"], step["id"], meta)
        except Exception as exc:  # a hook's veto, an argument msgpack cannot carry, a key the app lacks
            log.error("chain_broken", next_job_id=step.get("id"), next_task=step.get("task"), error=str(exc))
            return None
        return built

    def _fed(self, envelope: Envelope) -> Envelope:
        """The envelope of a join's callback with what it receives first: a chord's callback the results
        of its members (in order; None for one that did not succeed), a batch's callback the batch's
        counts (``BatchStatus.as_dict``). Any other envelope as it is."""
        meta = envelope.meta
        if CHORD_META in meta:
            chord_id = str(meta[CHORD_META])
            record = self.app.broker.workflows.record(chord_id, members=False)
            if record is None:  # kept the longest of result_ttl and dead_ttl after the members ended
                raise LookupError(f"the results of chord {chord_id} are gone: its record expired")
            found = self.app.broker.workflows.results(chord_id, int(record.fields.get("total", 0)))
            results = [None if item is None else self._member_result(*item) for item in found]
            return replace(envelope, args=[results, *envelope.args])
        if BATCH_CALLBACK_META in meta:
            batch_id = str(meta[BATCH_CALLBACK_META])
            status = batch_status(self.app, batch_id)
            counts = status.as_dict() if status is not None else {"id": batch_id}
            return replace(envelope, args=[counts, *envelope.args])
        return envelope

    def _member_result(self, member_id: str, raw: bytes) -> Any:
        """A chord member's result as it stored it, opened when its task sealed it."""
        value = unpack(raw)
        if sealed_token(value) is None:
            return value
        return open_result(value, member_id, keyring(self.app.settings.encryption_keys))

    def _call(self, task: Task[Any, Any], envelope: Envelope) -> Any:
        try:
            return self._invoke(task, envelope)
        except TypeError:
            # Arguments that do not fit (a job from a producer that did not bind: an older signature, a
            # job enqueued by name) fail before the body runs: say so with an ArgumentsError, which the
            # failure path never retries. A TypeError of the task's own stays what it is. Binding only
            # here costs the jobs that fit nothing.
            task.check_arguments(envelope.args, envelope.kwargs)
            raise

    def _invoke(self, task: Task[Any, Any], envelope: Envelope) -> Any:
        options = task.options
        if task.is_async:
            timeout = options.timeout if self._time_limits else None
            return self._run_coroutine(task.fn(*envelope.args, **envelope.kwargs), timeout)
        if not self._time_limits or (options.soft_timeout is None and options.timeout is None):
            return task.fn(*envelope.args, **envelope.kwargs)
        with time_limits(options.soft_timeout, options.timeout):
            return task.fn(*envelope.args, **envelope.kwargs)

    def _snoozed(self, task: Task[Any, Any], job: Job[Any], d: Delivery, exc: Snooze, duration: int) -> Outcome:
        """The task asked to run later (``Snooze``, ``RateLimited``): scheduled again, no attempt counted."""
        delay = max(0.0, to_seconds(exc.delay))  # type: ignore[arg-type]
        due = now_ms() + int(delay * 1000)
        log.info("snoozed", reason=exc.reason, retry_in_s=delay, duration_ms=duration)
        error = error_record(None, type(exc).__name__, exc.reason)
        return Retried(d, job.id, error, due, duration, task=task.name, snoozed=True)

    def _failed(self, task: Task[Any, Any], job: Job[Any], d: Delivery, exc: BaseException, duration: int) -> Outcome:
        return failed_attempt(self.app, task, job, d, exc, duration)


def _elapsed_ms(began: float) -> int:
    return int((time.monotonic() - began) * 1000)


def run_coroutine(coro: Any, timeout: float | None) -> Any:
    """Run a coroutine on a fresh event loop (used when the child has no loop thread)."""

    async def limited() -> Any:
        return await _with_timeout(coro, timeout)

    return asyncio.run(limited())


async def _with_timeout(coro: Any, timeout: float | None) -> Any:
    if timeout is None:
        return await coro
    try:
        return await asyncio.wait_for(coro, timeout)
    except TimeoutError:
        raise TimeLimitExceeded(timeout) from None


class LoopThread:
    """An event loop on its own thread, shared by the async tasks of one worker child."""

    def __init__(self) -> None:
        import threading

        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="resq-asyncio", daemon=True)
        self._thread.start()

    def run(self, coro: Any, timeout: float | None) -> Any:
        """Run ``coro`` on the loop and wait for its result (hard ``timeout`` enforced on the loop)."""
        future = asyncio.run_coroutine_threadsafe(_with_timeout(coro, timeout), self.loop)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise JobInterrupted("cancelled") from None
        except BaseException:
            future.cancel()
            raise

    def stop(self) -> None:
        """Stop the loop and its thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
