"""Joins: the Redis side of chords, batches and ``depends_on`` (``_workflow.lua``, ``resq/canvas.py``).

A join counts the jobs it waits for (its members) and releases its callbacks, each a ``deferred`` job
stored when the join is opened, in the same script that records the end of the member that decides it.
Its keys share the workflow's hash tag (``Keys.workflow``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from resq.broker.connection import Part, text
from resq.broker.queues import NewJob, Queues
from resq.clock import now_ms
from resq.codec import pack, unpack
from resq.errors import ConfigError, CycleError

__all__ = ["Callback", "JoinRecord", "Workflows", "pack_joins"]


class Callback(NamedTuple):
    """A job a join releases: ``success`` (a chord's callback, a batch's ``on_success``, a job enqueued
    with ``depends_on``) or ``complete`` (a batch's ``on_complete``), in ``queue``."""

    role: str
    queue: str
    job: NewJob


class JoinRecord(NamedTuple):
    """A join as Redis holds it: its fields (``kind``, ``open``, ``total``, ``succeeded``, ``failed``,
    ``policy``, ``description``, ``created_ms``, ``fired:success``, ``fired:complete``), its callbacks
    (role -> ``(job id, queue)``) and its members (job id -> status, ``pending`` until it ends)."""

    fields: dict[str, str]
    callbacks: dict[str, tuple[str, str]]
    members: dict[str, str]


def pack_joins(joins: Sequence[tuple[str, int]]) -> bytes:
    """The ``joins`` field of a member: each join's id and the member's index in it (-1: its result is
    not kept)."""
    return pack([[join_id, index] for join_id, index in joins]) if joins else b""


class Workflows(Part):
    """Opening, closing and reading joins."""

    def __init__(self, connection: Any, keys: Any, queues: Queues) -> None:
        super().__init__(connection, keys)
        self._queues = queues

    def open(
        self,
        join_id: str,
        kind: str,
        *,
        policy: str,
        is_open: bool,
        keep_ms: int,
        callbacks: Sequence[Callback] = (),
        parents: Sequence[tuple[str, str]] = (),
        description: str = "",
    ) -> None:
        """Store a join and its callbacks (as ``deferred`` jobs); ``parents`` (``(job id, queue)`` of jobs
        that exist) are its members at once, counted already when they ended.

        Args:
            policy: what the join does with its success callback when a member ends other than succeeded:
                end it ``dead`` (``fail``), end it ``cancelled`` (``cancel``), run it once every member
                ended (``run``), or leave it waiting for the failed members to be retried (``wait``: a
                batch's ``on_success``).
            is_open: members join later (``enqueue`` with their ``joins``), until :meth:`close`.
            keep_ms: how long the join's record stays once every member ended.

        Raises:
            ConfigError: a callback's id is a live job's, or a parent has no record.
            CycleError: a callback is an ancestor of one of its parents.
        """
        k = self.keys
        keys = [k.join(join_id), k.join_members(join_id), *(k.job(c.queue, c.job.job_id) for c in callbacks)]
        channel = self.connection.listened(k.events)
        args: list[Any] = [join_id, now_ms(), channel, kind, policy, "1" if is_open else "0", keep_ms, description]
        args.append(len(callbacks))
        for c in callbacks:
            job = c.job
            args += [c.role, job.job_id, c.queue, job.task, job.envelope, job.flow.priority, job.flow.packed()]
            args.append(job.joins)
        for job_id, queue in parents:
            args += [job_id, queue]
        for c in callbacks:
            self._queues.announce(c.queue)
        reply = self.connection.with_retry(lambda: self.connection.script("join", keys, args))
        what, *rest = [text(part) for part in reply]
        if what == "exists":
            raise ConfigError(f"job id {rest[0]!r} is taken by a job that has not ended: pick another job_id")
        if what == "missing":
            raise ConfigError(
                f"depends_on: job {rest[0]!r} not found (never enqueued, or it ended and its record expired)"
            )
        if what == "cycle":
            raise CycleError(f"depends_on would make a cycle: job {rest[0]!r} would wait for itself")

    def close(self, join_id: str) -> int | None:
        """Close an open join: decided as soon as its members ended. Returns its member count (None: no
        such join)."""
        k = self.keys
        args = [join_id, now_ms(), self.connection.listened(k.events)]
        reply = self.connection.with_retry(lambda: self.connection.script("join_close", [k.join(join_id)], args))
        return None if reply is None else int(reply)

    def record(self, join_id: str, members: bool = True) -> JoinRecord | None:
        """The join's fields, callbacks and members (None: no such join, or its record expired). Without
        ``members`` its members are not read (a batch's may be many): ``JoinRecord.members`` is empty."""
        k = self.keys

        def read() -> list[Any]:
            pipe = self._redis.pipeline(transaction=False)
            pipe.hgetall(k.join(join_id))
            if members:
                pipe.hgetall(k.join_members(join_id))
            replies = list(pipe.execute())
            return replies if members else [replies[0], {}]

        fields, found = self.connection.with_retry(read)
        if not fields:
            return None
        plain: dict[str, str] = {}
        callbacks: dict[str, tuple[str, str]] = {}
        for name, value in fields.items():
            key = text(name)
            if key in ("success", "complete"):
                ref = unpack(value)
                callbacks[key] = (str(ref[0]), str(ref[1]))
            else:
                plain[key] = text(value)
        return JoinRecord(plain, callbacks, {text(m): text(s) for m, s in found.items()})

    def results(self, join_id: str, total: int) -> list[tuple[str, bytes] | None]:
        """A chord's results in the order of its members: each ``(member id, result as stored)``, None
        for a member that did not succeed."""
        if total <= 0:
            return []
        key = self.keys.join_results(join_id)
        names = [name for i in range(total) for name in (str(i), f"{i}:id")]
        raw = self.connection.with_retry(lambda: self._redis.hmget(key, names))
        pairs = zip(raw[::2], raw[1::2], strict=True)
        return [None if result is None or member is None else (text(member), result) for result, member in pairs]
