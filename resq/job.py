"""Jobs: their statuses and the handle producers hold (``status``, ``result``, ``info``, ``cancel``,
``progress``)."""

from __future__ import annotations

import itertools
import math
import os
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, overload

from resq.clock import from_ms
from resq.codec import Envelope, decode_envelope, sealed_token, shown, unpack
from resq.errors import ConfigError, DecodeError, JobCancelled, JobFailed, ResultTimeout, UnknownJob
from resq.flow import Flow
from resq.sealing import Keyring, key_id_of, keyring, open_envelope, open_result

if TYPE_CHECKING:
    from resq.app import Resq

__all__ = ["ACTIVE_STATUSES", "TERMINAL_STATUSES", "Job", "JobStatus", "JobStore", "Progress", "new_job_id"]

R = TypeVar("R")


class JobStatus(StrEnum):
    """Where a job is in its life; a ``str``, so ``job.status() == "dead"`` holds."""

    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRYING = "retrying"
    DEAD = "dead"
    CANCELLED = "cancelled"
    #: not started before its ``expires_in`` / ``expires_at``: never run
    EXPIRED = "expired"
    #: waiting for the jobs it depends on (a chord's callback, a batch's, ``depends_on``): not queued yet
    DEFERRED = "deferred"


#: Statuses of a job that may still run.
ACTIVE_STATUSES = frozenset(
    {JobStatus.SCHEDULED, JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.RETRYING, JobStatus.DEFERRED}
)
#: Statuses a job ends in.
TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.DEAD, JobStatus.CANCELLED, JobStatus.EXPIRED})

#: The longest progress note kept, in characters (a longer one is cut, with an ellipsis).
PROGRESS_NOTE_MAX = 200
#: A running job writes its progress at most this often (seconds), unless the note changes or it is done.
PROGRESS_EVERY_S = 0.1


@dataclass(frozen=True)
class Progress:
    """How far a running job said it is (``job.progress()``).

    Attributes:
        fraction: from 0.0 to 1.0.
        note: the task's own words (``"page 3 of 7"``), or None.
        at: when the task reported it (UTC).
    """

    fraction: float
    note: str | None
    at: datetime


class JobStore(Protocol):
    """Where a :class:`Job` handle reads its job: Redis (``app.broker.jobs``), or the in-memory records
    of eager mode (``resq.testing.EagerJobs``). Records have the fields of the Redis job hash."""

    def find_queue(self, job_id: str) -> str | None:
        """The queue that holds the job, or None."""

    def fields(self, queue: str, job_id: str) -> dict[str, bytes]:
        """Every field of the job's record (empty when unknown)."""

    def history(self, queue: str, job_id: str) -> list[dict[str, Any]]:
        """The job's lifecycle events, oldest first."""

    def status(self, queue: str, job_id: str) -> JobStatus | None:
        """The job's status, or None when unknown."""

    def wait_done(self, queue: str, job_id: str, timeout_s: float | None) -> bool:
        """Wait until the job is final (True) or ``timeout_s`` passes (False)."""

    def cancel(self, queue: str, job_id: str) -> JobStatus | None:
        """Cancel the job; its status after the call, or None when unknown."""

    def set_progress(self, queue: str, job_id: str, fraction: float, note: str | None) -> bool:
        """Record the progress of a running job (True); a job not running is left alone (False)."""

    def progress(self, queue: str, job_id: str) -> dict[str, Any] | None:
        """The job's last recorded progress, ``{"fraction", "note", "at_ms"}``, or None."""


def new_job_id() -> str:
    """A unique, time-sortable id: 12 hex digits of milliseconds, 6 of this process's random prefix, then
    4 of a counter. Two ids of one process never meet (that would take 65,536 ids in one millisecond),
    and ids of two processes meet only if their prefixes do (one chance in 16 million per pair), where
    10 random digits per id would meet about once in three days at 100,000 jobs a second."""
    return f"{time.time_ns() // 1_000_000:012x}{_ids.prefix:06x}{next(_ids.counter) & 0xFFFF:04x}"


class _Ids:
    """The state of :func:`new_job_id` in this process (a forked child draws a new prefix)."""

    def __init__(self) -> None:
        self.draw()

    def draw(self) -> None:
        """A new prefix, and a counter starting anywhere."""
        self.prefix = secrets.randbits(24)
        self.counter = itertools.count(secrets.randbits(16))


_ids = _Ids()
os.register_at_fork(after_in_child=_ids.draw)


class Job(Generic[R]):
    """A handle on one job, held by the producer (``task.delay()``) or found by ``app.job(id)``.

    Attributes:
        id: the job's id.
        attempt: inside a worker, the number of the attempt running (1 for the first); else 0.
        deduplicated: True on the handle an enqueue of a unique or debounced task returns when the call
            went to an existing job (this handle's) instead of creating one; else False.
    """

    def __init__(self, app: Resq, job_id: str, queue: str | None = None, *, task: str = "", attempt: int = 0) -> None:
        self.app = app
        self.id = job_id
        self._queue = queue
        self.task = task
        self.attempt = attempt
        self.deduplicated = False
        #: what ``before_enqueue`` hooks may change: queue, args, kwargs, meta
        self.options: dict[str, Any] = {}
        #: the last progress write through this handle: (monotonic time, fraction, note), for the throttle
        self._progress_sent: tuple[float, float, str | None] | None = None

    def __repr__(self) -> str:
        return f"<Job {self.id} task={self.task or '?'} queue={self._queue or '?'}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def queue(self) -> str:
        """The queue the job belongs to.

        Raises:
            UnknownJob: Redis knows no job with this id.
        """
        if self._queue is None:
            self._queue = self.app.job_store.find_queue(self.id)
            if self._queue is None:
                raise UnknownJob(f"no job with id {self.id!r} (never enqueued, or its record expired)")
        return self._queue

    def status(self) -> JobStatus:
        """The job's current status.

        Raises:
            UnknownJob: the job is unknown, or its record expired (after ``result_ttl``).
        """
        status = self.app.job_store.status(self.queue, self.id)
        if status is None:
            raise UnknownJob(f"no job with id {self.id!r} (never enqueued, or its record expired)")
        return status

    def result(self, timeout: float | None = None) -> R:
        """Wait for the job to finish and return its result.

        Blocks in Redis (no polling) until the job is final.

        Args:
            timeout: seconds to wait at most; None waits as long as it takes.

        Raises:
            JobFailed: the job is dead (it carries the remote exception's type, message and traceback) or expired
                (type ``JobExpired``).
            JobCancelled: the job was cancelled.
            ResultTimeout: the job did not finish within ``timeout``.
            UnknownJob: the job is unknown or its record expired.
            DecryptError: the result is sealed (an encrypted task) under a key this app does not hold.
        """
        status = self.status()
        if status not in TERMINAL_STATUSES and not self.app.job_store.wait_done(self.queue, self.id, timeout):
            raise ResultTimeout(f"job {self.id} did not finish within {timeout} s (status: {self.status()})")
        fields = self.app.job_store.fields(self.queue, self.id)
        status = JobStatus(fields["status"].decode())
        if status == JobStatus.SUCCEEDED:
            value = unpack(fields["result"])
            if sealed_token(value) is not None:
                value = open_result(value, self.id, self._keys())
            return value  # type: ignore[no-any-return]
        error = _error(fields)
        if status == JobStatus.CANCELLED:
            reason = fields.get("cancel_reason", b"cancelled").decode()
            raise JobCancelled(self.id, "JobCancelled", reason)
        if status == JobStatus.EXPIRED:
            raise JobFailed(self.id, "JobExpired", "not started before it expired (expires_in / expires_at)", "")
        raise JobFailed(self.id, error.get("type", "?"), error.get("message", ""), error.get("traceback", ""))

    def info(self) -> dict[str, Any]:
        """What Redis records of the job: task, queue, status, attempts, timestamps, worker, ``result``
        (the decoded return value of a succeeded job, else None), ``error`` (the *last failed attempt's*
        error, kept after a later attempt succeeds; None if no attempt failed), ``progress`` (the last
        report of :meth:`progress`: ``{"fraction", "note", "at"}``, or None), and its history (each
        event: ``event``, ``at``, ``attempt`` and details such as each attempt's ``error`` and
        ``duration_ms``). An encrypted job's arguments and result are opened with the app's keys; what
        they cannot open is None, and named in ``encrypted`` (see :func:`describe`).

        Raises:
            UnknownJob: the job is unknown or its record expired.
        """
        fields = self.app.job_store.fields(self.queue, self.id)
        if not fields:
            raise UnknownJob(f"no job with id {self.id!r} (never enqueued, or its record expired)")
        info = describe(self.id, self.queue, fields, self._keys())
        info["history"] = [
            {**event, "at": from_ms(int(event.get("at_ms", 0)))}
            for event in self.app.job_store.history(self.queue, self.id)
        ]
        return info

    def cancel(self) -> JobStatus:
        """Cancel the job: a queued or scheduled job is removed; a running one is asked to stop.

        Returns:
            The status after the call (``cancelled``, ``running`` while the worker stops it, or the
            final status the job already had).

        Raises:
            UnknownJob: the job is unknown or its record expired.
        """
        status = self.app.job_store.cancel(self.queue, self.id)
        if status is None:
            raise UnknownJob(f"no job with id {self.id!r} (never enqueued, or its record expired)")
        return status

    @overload
    def progress(self) -> Progress | None: ...

    @overload
    def progress(self, fraction: float, note: str | None = None) -> None: ...

    def progress(self, fraction: float | None = None, note: str | None = None) -> Progress | None:
        """Report how far the job is (with ``fraction``), or read what it last reported (without).

        Inside a task::

            job = resq.current_job()
            for i, page in enumerate(pages):
                job.progress(i / len(pages), note=f"page {i + 1} of {len(pages)}")
                ...

        and anywhere else: ``app.job(job_id).progress()`` -> ``Progress(fraction=0.42, note="page 3 of 7",
        at=datetime(...))``, or None when the job reported nothing.

        A report is recorded only while the job's status is ``running`` (a queued or finished job is left
        alone, and the call does nothing); it replaces the previous one, stays in the job's record until
        the record expires (also after the job ends), is not added to the job's history, and is published
        as the lifecycle event ``progress`` when someone follows the events (``resq events``).

        Reports are throttled per handle, so a task may call this in a tight loop: a report is skipped
        (not sent, not kept for later) when the previous write through this handle was less than
        0.1 s ago, the fraction is below 1.0 and the note is unchanged. A fraction of 1.0, or a new note,
        is always written.

        Args:
            fraction: how much is done, from 0.0 to 1.0 (None: read instead of writing).
            note: a short text shown with it (cut to 200 characters), or None.

        Returns:
            Writing: None. Reading: the last :class:`Progress` recorded, or None.

        Raises:
            ConfigError: ``fraction`` is not a number from 0.0 to 1.0 (NaN, a bool, a string…), ``note``
                is not a string, or a note is given without a fraction; nothing is written.
            UnknownJob: no queue knows the job (never enqueued, or its record expired).
        """
        if fraction is None:
            if note is not None:
                raise ConfigError(
                    "job.progress(note=...) needs a fraction from 0.0 to 1.0: pass one, "
                    "e.g. job.progress(0.5, note='half way') (with no arguments, job.progress() reads it)"
                )
            found = self.app.job_store.progress(self.queue, self.id)
            return None if found is None else _progress_of(found)
        value = _fraction(fraction)
        text = _note(note)
        now = time.monotonic()
        sent = self._progress_sent
        if sent is not None and value < 1.0 and text == sent[2] and now - sent[0] < PROGRESS_EVERY_S:
            return None
        self._progress_sent = (now, value, text)
        self.app.job_store.set_progress(self.queue, self.id, value, text)
        return None

    def _keys(self) -> Keyring:
        """The keys this app opens sealed payloads with."""
        return keyring(self.app.settings.encryption_keys)


def _fraction(fraction: Any) -> float:
    """``fraction`` as a float from 0.0 to 1.0, or a ConfigError."""
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0.0 <= fraction <= 1.0:
        shown_value = repr(fraction) if len(repr(fraction)) <= 40 else repr(fraction)[:39] + "…"
        raise ConfigError(
            f"job.progress() takes a fraction from 0.0 to 1.0, got {shown_value}: "
            "pass done / total, e.g. job.progress(3 / 7, note='page 3 of 7')"
        )
    return float(fraction)  # NaN fails the range check above


def _note(note: Any) -> str | None:
    """``note`` cut to :data:`PROGRESS_NOTE_MAX` characters (None and "" are None), or a ConfigError."""
    if note is None or note == "":
        return None
    if not isinstance(note, str):
        raise ConfigError(
            f"job.progress(note=...) takes a string or None, got {type(note).__name__}: "
            "pass text, e.g. note=f'page {i} of {n}'"
        )
    return note if len(note) <= PROGRESS_NOTE_MAX else note[: PROGRESS_NOTE_MAX - 1] + "…"


def _progress_of(found: dict[str, Any]) -> Progress | None:
    """A :class:`Progress` from the stored map ``{"fraction", "note", "at_ms"}`` (None if it is not one)."""
    fraction, note, at_ms = found.get("fraction"), found.get("note"), found.get("at_ms")
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not isinstance(at_ms, int):
        return None
    if not math.isfinite(fraction):
        return None
    return Progress(float(fraction), note if isinstance(note, str) else None, from_ms(at_ms))


def decode_progress(raw: bytes | None) -> dict[str, Any] | None:
    """The stored progress map of a job hash's ``progress`` field (None when absent or unreadable)."""
    if not raw:
        return None
    try:
        value = unpack(raw)
    except DecodeError:
        return None
    return value if isinstance(value, dict) else None


def _error(fields: dict[str, bytes]) -> dict[str, str]:
    raw = fields.get("error")
    if not raw:
        return {}
    try:
        value = unpack(raw)
    except DecodeError:
        return {"type": "DecodeError", "message": "the stored error cannot be decoded"}
    return value if isinstance(value, dict) else {"message": shown(value)}


def _result(fields: dict[str, bytes]) -> Any:
    """The decoded result of a succeeded job (None if it cannot be decoded)."""
    try:
        return unpack(fields.get("result", b"\xc0"))
    except DecodeError:
        return None


#: Fields of a job hash that hold msgpack, not text.
_PACKED = ("envelope", "result", "error", "progress", "history", "flow")
_TIMESTAMPS = ("enqueued_ms", "first_started_ms", "started_ms", "finished_ms", "failed_ms", "due_ms")


def describe(job_id: str, queue: str, fields: dict[str, bytes], keys: Keyring | None = None) -> dict[str, Any]:
    """A plain dict describing a job record, for ``Job.info()`` and the CLI; never raises.

    ``progress`` is the job's last report (``{"fraction", "note", "at"}``, see :meth:`Job.progress`) or
    None. An encrypted job's sealed arguments and result are opened with ``keys`` (none: left sealed); the
    dict then has ``encrypted``: ``{"args": key id or None, "result": key id or None, "unreadable":
    the parts that stayed sealed ("args", "result"), shown as None}``.
    """
    text = {k: v.decode("utf-8", "replace") for k, v in fields.items() if k not in _PACKED}
    info: dict[str, Any] = {
        "id": job_id,
        "queue": queue,
        "task": text.get("task", ""),
        "status": text.get("status", ""),
        "attempts": int(text.get("attempt", "0")),
        "worker": text.get("worker") or None,
        "result": _result(fields) if text.get("status") == JobStatus.SUCCEEDED else None,
        "error": _error(fields) or None,
        "lost": int(text.get("lost", "0")),
        "duration_ms": int(text["duration_ms"]) if "duration_ms" in text else None,
        "progress": _progress_info(fields.get("progress")),
        "priority": int(text.get("priority", "0")),
        "limits": _limits(fields.get("flow")),
    }
    for name in _TIMESTAMPS:
        info[name.removesuffix("_ms") + "_at"] = from_ms(int(text[name])) if name in text else None
    envelope: Envelope | None = None
    try:
        envelope = decode_envelope(fields.get("envelope", b""))
        info["args"], info["kwargs"] = envelope.args, envelope.kwargs
    except DecodeError:
        info["args"], info["kwargs"] = None, None
        info["raw_payload"] = fields.get("envelope", b"")
    sealed_args = None if envelope is None else envelope.sealed
    sealed_result = sealed_token(info["result"])
    if sealed_args is not None or sealed_result is not None:
        info["encrypted"] = _open_sealed(info, job_id, envelope, keys or Keyring(()))
    return info


def _limits(raw: bytes | None) -> dict[str, Any] | None:
    """The flow control a job counts against, for :func:`describe` (None: none): ``concurrency``
    ``{"key", "limit"}``, ``rate`` ``{"key", "starts", "window_s"}``, ``expires_at``."""
    flow = Flow.unpacked(raw)
    if not flow.gated and flow.group is None:
        return None
    found: dict[str, Any] = {}
    if flow.group is not None:
        found["group"] = flow.group
    if flow.concurrency_key is not None:
        found["concurrency"] = {"key": flow.concurrency_key, "limit": flow.concurrency}
    if flow.rate_key is not None:
        found["rate"] = {"key": flow.rate_key, "starts": flow.rate, "window_s": flow.rate_window_ms / 1000}
    if flow.expires_ms:
        found["expires_at"] = from_ms(flow.expires_ms)
    return found


def _progress_info(raw: bytes | None) -> dict[str, Any] | None:
    """The job's last progress for :func:`describe`: ``{"fraction", "note", "at"}``, or None."""
    stored = decode_progress(raw)
    found = None if stored is None else _progress_of(stored)
    return None if found is None else {"fraction": found.fraction, "note": found.note, "at": found.at}


def _open_sealed(info: dict[str, Any], job_id: str, envelope: Envelope | None, keys: Keyring) -> dict[str, Any]:
    """Replace the sealed parts of ``info`` by what they seal, or None where ``keys`` cannot open them;
    returns what ``info["encrypted"]`` says of them."""
    unreadable = []
    sealed_args, sealed_result = None if envelope is None else envelope.sealed, sealed_token(info["result"])
    if envelope is not None and sealed_args is not None:
        try:
            opened = open_envelope(envelope, job_id, keys)
            info["args"], info["kwargs"] = opened.args, opened.kwargs
        except (DecodeError, ConfigError):  # a DecryptError too (a key it lacks, altered); no cryptography
            info["args"], info["kwargs"] = None, None
            unreadable.append("args")
    if sealed_result is not None:
        try:
            info["result"] = open_result(info["result"], job_id, keys)
        except (DecodeError, ConfigError):
            info["result"] = None
            unreadable.append("result")
    return {
        "args": None if sealed_args is None else key_id_of(sealed_args),
        "result": None if sealed_result is None else key_id_of(sealed_result),
        "unreadable": unreadable,
    }
