"""Jobs: find a job's queue, read its record and history, wait for its end, cancel it, record and read its
progress, and the dead sets.

Reads made for producers (``Job.status()``, ``Job.result()``) retry a lost connection for
``broker_retry_s`` before raising ``BrokerUnavailable``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from resq.broker.connection import MAX_BLOCK_S, Connection, Part, Pipeline, status_of, text
from resq.broker.handoff import HandedOff, unwrap
from resq.broker.keys import Keys
from resq.broker.queues import GROUP, Queues
from resq.clock import now_ms, to_ms
from resq.codec import pack, unpack
from resq.errors import DecodeError
from resq.job import TERMINAL_STATUSES, JobStatus, decode_progress

__all__ = ["Jobs"]


class Jobs(Part):
    """The job-side operations of one namespace."""

    def __init__(self, connection: Connection, keys: Keys, queues: Queues) -> None:
        super().__init__(connection, keys)
        self._queues = queues

    def find_queue(self, job_id: str) -> str | None:
        """The queue whose keys hold job ``job_id``, or None if no queue knows it."""
        c, k = self.connection, self.keys
        queues = c.with_retry(self._queues.known)
        if not queues:
            return None

        def exists(pipe: Pipeline) -> None:
            for queue in queues:
                pipe.exists(k.job(queue, job_id))

        found = c.with_retry(lambda: c.pipeline(exists))
        return next((q for q, hit in zip(queues, found, strict=True) if hit), None)

    def fields(self, queue: str, job_id: str) -> dict[str, bytes]:
        """Every field of a job's record (empty when it is unknown or expired), with the envelope of a
        job that waits or runs read from its stream entry (where ``enqueue`` put it)."""
        raw = self.connection.with_retry(lambda: self._redis.hgetall(self.keys.job(queue, job_id)))
        fields = {text(k): v for k, v in raw.items()}
        entry = fields.get("entry")
        if "envelope" not in fields and entry and fields.get("status") in (b"queued", b"running"):
            envelope = self.connection.with_retry(lambda: self._entry_envelope(queue, job_id, entry))
            if envelope is not None:
                fields["envelope"] = envelope
        return fields

    def _entry_envelope(self, queue: str, job_id: str, entry: bytes) -> bytes | None:
        """The envelope carried by the job's entry, in the queue's front stream or its own."""
        for stream in self.keys.streams(queue):
            found = self._redis.xrange(stream, entry, entry)
            if found and found[0][1].get(b"id") == job_id.encode() and b"envelope" in found[0][1]:
                return bytes(found[0][1][b"envelope"])
        return None

    def history(self, queue: str, job_id: str) -> list[dict[str, Any]]:
        """The job's lifecycle events, oldest first (each: event, at_ms, attempt, and details).

        The job hash keeps one entry per attempt and per other transition (``_lib.lua``); they are
        expanded here into the events they stand for: an entry that ends an attempt into its ``started``
        event, then ``failed`` when it failed, then itself.
        """
        key = self.keys.job(queue, job_id)
        names = ("enqueued_ms", "history", "status", "started_ms", "worker", "attempt", "task")
        values = self.connection.with_retry(lambda: self._redis.hmget(key, *names, "finished_ms", "duration_ms"))
        fields = dict(zip(names, values[: len(names)], strict=True))
        events = expand_history(decode_history(fields["history"]), int(fields["enqueued_ms"] or 0))
        implied = _implied_events(job_id, queue, fields, *values[len(names) :])
        if implied and not (events and events[-1].get("event") == implied[-1]["event"]):
            events = sorted([*events, *implied], key=lambda e: int(e.get("at_ms") or 0))
        return events

    def status(self, queue: str, job_id: str) -> JobStatus | None:
        """A job's status, or None when it is unknown or expired."""
        return status_of(self.connection.with_retry(lambda: self._redis.hget(self.keys.job(queue, job_id), "status")))

    def task_name(self, queue: str, job_id: str) -> str:
        """The task named in a job's record ('' when unknown); one command, no retry (for workers)."""
        raw = self._redis.hget(self.keys.job(queue, job_id), "task")
        return "" if raw is None else text(raw)

    def wait_done(self, queue: str, job_id: str, timeout_s: float | None) -> bool:
        """Block until the job reaches a final state (True) or ``timeout_s`` passes (False).

        First says that it waits (the ``wait`` script sets the job's ``waiting`` flag, so its final
        transition pushes to its ``done`` list; jobs nobody waits for skip that push), then waits on the
        ``done`` list with BLMOVE onto itself, so any number of waiters wake without polling and without
        consuming the signal.
        """
        status = status_of(
            self.connection.with_retry(lambda: self.connection.script("wait", [self.keys.job(queue, job_id)], []))
        )
        if status is None or status in TERMINAL_STATUSES:
            return status is not None
        key = self.keys.done(queue, job_id)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            left = MAX_BLOCK_S if deadline is None else min(MAX_BLOCK_S, deadline - time.monotonic())
            if left <= 0:
                return False
            if self._blmove(key, max(left, 0.01)) is not None:
                return True

    def _blmove(self, key: str, wait_s: float) -> Any:
        return self.connection.with_retry(lambda: self._redis.blmove(key, key, wait_s, "RIGHT", "LEFT"))

    def cancel(self, queue: str, job_id: str) -> JobStatus | None:
        """Cancel a queued or scheduled job, or ask the worker running it to stop.

        Returns:
            The status after the call, or None when the job is unknown.
        """
        k, c = self.keys, self.connection
        keys = [
            k.queue(queue),
            k.job(queue, job_id),
            k.scheduled(queue),
            k.done(queue, job_id),
            k.cancel_requests(queue),
            k.front(queue),
            k.handoff(queue),
        ]
        args = [GROUP, job_id, now_ms(), to_ms(self.settings.result_ttl), c.listened(k.events)]
        status, entry = unwrap(c.with_retry(lambda: c.script("cancel", keys, args)))
        if entry is not None:
            self._queues.hand_off([HandedOff(queue, job_id, entry)])
        return status_of(status)

    def set_progress(self, queue: str, job_id: str, fraction: float, note: str | None) -> bool:
        """Record how far a running job is (the ``progress`` script; no history entry), and publish the
        ``progress`` event when someone listens. Retries a lost connection as producers' calls do.

        Returns:
            True when recorded; False when the job is not running (or unknown): nothing was written.
        """
        k, c, now = self.keys, self.connection, now_ms()
        value = pack({"fraction": fraction, "note": note, "at_ms": now})
        args = [repr(fraction), note or "", now, job_id, c.listened(k.events), value]
        return bool(c.with_retry(lambda: c.script("progress", [k.job(queue, job_id)], args)))

    def progress(self, queue: str, job_id: str) -> dict[str, Any] | None:
        """A job's last recorded progress, ``{"fraction", "note", "at_ms"}``, or None when none was (or it
        cannot be read)."""
        raw = self.connection.with_retry(lambda: self._redis.hget(self.keys.job(queue, job_id), "progress"))
        return decode_progress(raw)

    # -- dead jobs --------------------------------------------------------------------------------

    def revive(self, queue: str, job_ids: Sequence[str]) -> list[str]:
        """Queue dead jobs again for a fresh series of attempts, in one round trip.

        Returns:
            The ids that were dead and are queued again.
        """
        if not job_ids:
            return []
        k, c, now = self.keys, self.connection, now_ms()
        channel = c.listened(k.events)

        def build(pipe: Pipeline) -> None:
            for job_id in job_ids:
                keys = [k.dead(queue), k.queue(queue), k.job(queue, job_id), k.done(queue, job_id)]
                c.eval(pipe, "revive", keys, [job_id, now, channel])

        replies = c.with_retry(lambda: c.pipeline(build))
        return [job_id for job_id, revived in zip(job_ids, replies, strict=True) if int(revived)]

    def purge_dead(self, queue: str, job_ids: Sequence[str]) -> int:
        """Delete dead jobs and their records (those still dead); returns how many were deleted."""
        if not job_ids:
            return 0
        return int(self._queues.purge_dead(queue, job_ids))

    def dead_ids(self, queue: str, start: int = 0, stop: int = -1) -> list[tuple[str, int]]:
        """Dead job ids of ``queue`` with their time of death (ms), newest first."""
        rows = self._redis.zrevrange(self.keys.dead(queue), start, stop, withscores=True)
        return [(text(job_id), int(score)) for job_id, score in rows]

    def dead_before(self, queue: str, until_ms: int, limit: int) -> list[str]:
        """Up to ``limit`` ids of jobs of ``queue`` that died at or before ``until_ms``, oldest first."""
        rows = self._redis.zrangebyscore(self.keys.dead(queue), "-inf", until_ms, start=0, num=limit)
        return [text(job_id) for job_id in rows]

    def dead_queue_of(self, queues: Sequence[str], job_id: str) -> str | None:
        """Which of ``queues`` holds ``job_id`` in its dead set, or None."""
        pipe = self._redis.pipeline(transaction=False)
        for name in queues:
            pipe.zscore(self.keys.dead(name), job_id)
        return next((n for n, score in zip(queues, pipe.execute(), strict=True) if score is not None), None)

    def summaries(self, jobs: Sequence[tuple[str, str]], fields: Sequence[str]) -> list[list[bytes | None]]:
        """``fields`` of each ``(queue, job id)`` record, in one round trip."""
        if not jobs:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for queue, job_id in jobs:
            pipe.hmget(self.keys.job(queue, job_id), *fields)
        return [list(row) for row in pipe.execute()]


def decode_history(raw: bytes | None) -> list[dict[str, Any]]:
    """The entries of a job hash's ``history`` field (empty when absent or unreadable)."""
    if not raw:
        return []
    try:
        entries = unpack(raw)
    except DecodeError:
        return []
    return [entry for entry in entries if isinstance(entry, dict)] if isinstance(entries, list) else []


#: Fields of an attempt-ending entry that belong to its ``failed`` event.
_FAILED_FIELDS = ("duration_ms", "error")


def _implied_events(
    job_id: str, queue: str, fields: dict[str, Any], finished_ms: Any, duration_ms: Any
) -> list[dict[str, Any]]:
    """The events the job hash implies but holds no entry for: the ``started`` of the attempt under
    way, or ``started`` and ``succeeded`` of a first attempt that succeeded (``succeed.lua`` writes no
    entry for it); none for any other job."""
    status, started_ms = status_of(fields["status"]), fields["started_ms"]
    if not started_ms or status not in (JobStatus.RUNNING, JobStatus.SUCCEEDED):
        return []
    attempt, task = int(fields["attempt"] or 0), text(fields["task"] or b"")
    base = {"job_id": job_id, "task": task, "queue": queue, "attempt": attempt}
    started = {"event": "started", **base, "at_ms": int(started_ms), "worker": text(fields["worker"] or b"")}
    if status == JobStatus.RUNNING:
        return [started]
    succeeded = {"event": "succeeded", **base, "at_ms": int(finished_ms or 0), "duration_ms": int(duration_ms or 0)}
    return [started, succeeded]


def expand_history(entries: list[dict[str, Any]], enqueued_ms: int) -> list[dict[str, Any]]:
    """The events that compact history entries stand for, oldest first.

    An entry that ends an attempt (it has ``started_ms``) is preceded by that attempt's ``started``
    event; a ``retrying`` entry, or a ``dead`` one whose attempt failed, by its ``failed`` event; a job
    enqueued plainly (no first ``enqueued``/``scheduled`` entry) gets its ``enqueued`` event back.
    """
    events: list[dict[str, Any]] = []
    if not entries or entries[0].get("event") not in ("enqueued", "scheduled"):
        first = entries[0] if entries else {}
        base: dict[str, Any] = {k: first[k] for k in ("job_id", "task", "queue") if k in first}
        events.append({"event": "enqueued", **base, "attempt": 0, "at_ms": enqueued_ms})
    for entry in entries:
        events.extend(_expand(entry))
    return events


def _expand(entry: dict[str, Any]) -> list[dict[str, Any]]:
    base: dict[str, Any] = {k: entry[k] for k in ("job_id", "task", "queue", "attempt") if k in entry}
    found: list[dict[str, Any]] = []
    started_ms = entry.pop("started_ms", None)
    worker = entry.pop("worker", None)
    if started_ms is not None:
        found.append({"event": "started", **base, "at_ms": started_ms, **({"worker": worker} if worker else {})})
    event = entry.get("event")
    if event == "retrying" or (event == "dead" and entry.get("failed")):
        failed = {k: entry.pop(k) for k in _FAILED_FIELDS if k in entry}
        found.append({"event": "failed", **base, "at_ms": entry.get("at_ms"), **failed})
        if event == "dead":
            entry["error"] = failed.get("error", "")
    entry.pop("failed", None)
    found.append(entry)
    return found
