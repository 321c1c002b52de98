"""Joins: the Redis side of chords, batches and ``depends_on`` (``_workflow.lua``, ``resq/canvas.py``).

A join counts the jobs it waits for (its members) and releases its callbacks, each a ``deferred`` job
stored when the join is opened, once the hand-off of the member that decides it is applied
(``resq.broker.handoff``). Its keys share the workflow's hash tag (``Keys.workflow``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from resq.broker.connection import Part, Pipeline, text
from resq.broker.handoff import pack_joins
from resq.broker.queues import NewJob, Queues
from resq.clock import now_ms
from resq.codec import pack, unpack
from resq.errors import ConfigError, CycleError

__all__ = ["Callback", "JoinRecord", "Workflows", "pack_joins"]

#: The most ancestors a ``depends_on`` looks through for a cycle.
MAX_ANCESTORS = 10_000


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
        """Store a join's callbacks (as ``deferred`` jobs, each in its queue), then the join; ``parents``
        (``(job id, queue)`` of jobs that exist) are its members at once, counted already when they ended.
        Each step is one script in one slot (``docs/workflows.md#redis-cluster``).

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
        if parents:
            self._check_parents(parents, {c.job.job_id for c in callbacks})
        for callback in callbacks:
            self._defer(join_id, callback, parents)
        k, c = self.keys, self.connection
        keys = [k.join(join_id), k.join_members(join_id), k.join_results(join_id)]
        args: list[Any] = [join_id, now_ms(), kind, policy, keep_ms, description, len(callbacks)]
        for cb in callbacks:
            args += [cb.role, cb.job.job_id, cb.queue, cb.job.flow.priority, cb.job.flow.packed()]
        args += [job_id for job_id, _ in parents]
        c.with_retry(lambda: c.script("join", keys, args))
        for job_id, queue in parents:
            self._attach(join_id, job_id, queue)
        if not is_open:
            self.close(join_id)

    def _defer(self, join_id: str, callback: Callback, parents: Sequence[tuple[str, str]]) -> None:
        """Store one callback as a deferred job (registered first in the joins it is a member of itself:
        a batch it was made in)."""
        k, c, job, q = self.keys, self.connection, callback.job, callback.queue
        handoff = self._queues.handoff
        added = handoff.register([(job.job_id, job.joins)])  # none when it joins nothing
        keys = [k.job(q, job.job_id), k.done(q, job.job_id)]
        args = [job.job_id, q, job.task, job.envelope, job.flow.priority, job.flow.packed(), join_id]
        args += [pack([list(p) for p in parents]) if parents else b"", job.joins, now_ms(), c.listened(k.events)]
        self._queues.announce(q)
        if text(c.with_retry(lambda: c.script("defer", keys, args))) == "exists":
            handoff.unregister(added, set())
            raise ConfigError(f"job id {job.job_id!r} is taken by a job that has not ended: pick another job_id")

    def _attach(self, join_id: str, job_id: str, queue: str) -> None:
        """Make parent ``job_id`` a member of the join: its end hands off to it, or, when it ended
        already (or its record expired meanwhile: counted ``expired``), its status is counted now."""
        c = self.connection
        reply = c.with_retry(lambda: c.script("attach", [self.keys.job(queue, job_id)], [join_id]))
        status = "expired" if reply is None else text(reply)
        if status != "attached":
            self._queues.handoff.settle(join_id, job_id, status)

    def _check_parents(self, parents: Sequence[tuple[str, str]], callbacks: set[str]) -> None:
        """Refuse parents without a record, and parents that descend from a callback (a cycle): the
        ancestors are read level by level (their ``parents`` fields), up to ``MAX_ANCESTORS`` jobs."""
        level, seen, first = list(parents), set[str](), True
        while level and len(seen) < MAX_ANCESTORS:
            found = self._ancestry(level)
            above: list[tuple[str, str]] = []
            for (job_id, _), (status, packed) in zip(level, found, strict=True):
                if job_id in callbacks:
                    raise CycleError(f"depends_on would make a cycle: job {job_id!r} would wait for itself")
                if first and status is None:
                    raise ConfigError(
                        f"depends_on: job {job_id!r} not found (never enqueued, or it ended and its record expired)"
                    )
                seen.add(job_id)
                above += [
                    (text(p[0]), text(p[1])) for p in (unpack(packed) if packed else []) if text(p[0]) not in seen
                ]
            level, first = above, False

    def _ancestry(self, jobs: Sequence[tuple[str, str]]) -> list[Any]:
        """The ``status`` and ``parents`` fields of each of ``jobs`` (``(job id, queue)``), in one round trip."""

        def build(pipe: Pipeline) -> None:
            for job_id, queue in jobs:
                pipe.hmget(self.keys.job(queue, job_id), "status", "parents")

        return self.connection.pipeline(build)

    def close(self, join_id: str) -> int | None:
        """Close an open join: decided as soon as its members ended. Returns its member count (None: no
        such join)."""
        return self._queues.handoff.close(join_id)

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
