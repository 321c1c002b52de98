"""Unique and debounced jobs: the enqueue that first asks who holds a task's lock (``unique.lua``).

A unique task (``@app.task(unique=True)``) has at most one live job per key, and a debounced one
(``@app.task(debounce=5)``) at most one pending job per key, whatever the number of producers: the
decision and the job's creation are one script. The lock is a string ``{ns:queue}:unique:<key>`` holding
the id of the job that took it; no start or outcome script releases it: the script reads its holder's
status at each call and decides from it (see the script's header for each mode).

Two phases keep every key declared in the script's KEYS (none is built in Lua from a prefix or from a
value read in Redis, which Redis Cluster requires): the lock is read first, then the script is called
naming the holder read, and repeated when another producer changed the lock in between.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

from resq.broker.connection import Part, status_of, text
from resq.broker.queues import GROUP, NewJob, Queues
from resq.clock import now_ms
from resq.errors import BrokerError
from resq.job import JobStatus

__all__ = ["DEBOUNCE_GRACE_MS", "MAX_TRIES", "MODES", "Unique", "UniqueLock", "UniqueReply"]

#: The ways a call is judged a duplicate: the lock of ``unique_until`` (``started``, ``finished``,
#: ``window``), or a debounce.
MODES = ("started", "finished", "window", "debounce")
#: How many times an enqueue calls the script before giving up, when other producers keep changing the lock.
MAX_TRIES = 5
#: How long a debounce's lock outlives its job's due time (ms): a call that comes while the job is due but
#: not promoted yet still finds it.
DEBOUNCE_GRACE_MS = 60_000


class UniqueLock(NamedTuple):
    """What a call of a unique or debounced task is judged by.

    Attributes:
        key: the lock's key within the queue (the task's name, then ``:`` and its key).
        mode: one of :data:`MODES`.
        ttl_ms: the lock's TTL (``unique_for``; 0: none). Unused by a debounce.
        debounce_ms: how long a debounced call waits for a newer one.
        debounce_max_ms: the most a debounced job waits after the first call (0: no cap).
    """

    key: str
    mode: str
    ttl_ms: int = 0
    debounce_ms: int = 0
    debounce_max_ms: int = 0


class UniqueReply(NamedTuple):
    """What an enqueue of a unique or debounced task did.

    Attributes:
        job_id: the new job's id, or the holder's when the call was a duplicate or debounced.
        status: that job's status (None: the holder's record is gone, in ``window`` mode).
        created: whether a job was created.
        how: ``'duplicate'`` (the holder runs instead), ``'debounced'`` (the holder takes the call's
            arguments and due time), or ``''`` (not deduplicated).
        due_ms: the job's due time (0: now).
    """

    job_id: str
    status: JobStatus | None
    created: bool
    how: str
    due_ms: int

    @property
    def deduplicated(self) -> bool:
        """Whether the call went to an existing job."""
        return bool(self.how)


class Unique(Part):
    """The enqueue of unique and debounced tasks."""

    def __init__(self, connection: Any, keys: Any, queues: Queues) -> None:
        super().__init__(connection, keys)
        self._queues = queues

    def enqueue(
        self,
        queue: str,
        job: NewJob,
        lock: UniqueLock,
        *,
        if_absent: bool = False,
        envelope_for: Callable[[str], bytes] | None = None,
    ) -> UniqueReply:
        """Store ``job`` unless ``lock`` makes it a duplicate, retrying a lost connection for
        ``broker_retry_s``.

        Args:
            if_absent: create the job only if no record of its id exists at all.
            envelope_for: the call's envelope under another job's id (a debounced call replaces its
                holder's arguments with it); needed for a debounce.

        Raises:
            BrokerError: other producers changed the lock at every one of ``MAX_TRIES`` tries.
        """
        c, lock_key = self.connection, self.keys.unique(queue, lock.key)
        self._queues.announce(queue)
        holder = text(c.with_retry(lambda: c.fast_pipeline(lambda batch: batch.get(lock_key)))[0] or b"")
        channel = c.listened(self.keys.events)
        for _ in range(MAX_TRIES):
            keys, args = self._call(queue, job, lock, if_absent, holder, envelope_for, channel)
            reply = c.with_retry(functools.partial(c.script, "unique", keys, args))
            if text(reply[0]) != "retry":
                return _reply(reply)
            holder = text(reply[1])
        raise _contended(lock_key)

    async def aenqueue(
        self,
        queue: str,
        job: NewJob,
        lock: UniqueLock,
        *,
        envelope_for: Callable[[str], bytes] | None = None,
    ) -> UniqueReply:
        """:meth:`enqueue` for ``async`` code, on the running loop's ``redis.asyncio`` client (as
        ``Queues.aenqueue``): the loop is never blocked."""
        c, lock_key = self.connection, self.keys.unique(queue, lock.key)
        channel = c.listened(self.keys.events, look=False)
        client = c.async_client
        if self._queues._announce_due(queue):
            await client.sadd(self.keys.queues, queue)  # advisory, as in Queues.aenqueue
        holder = text(await client.get(lock_key) or b"")
        for _ in range(MAX_TRIES):
            keys, args = self._call(queue, job, lock, False, holder, envelope_for, channel)
            reply = await c.ascript("unique", keys, args)
            if text(reply[0]) != "retry":
                return _reply(reply)
            holder = text(reply[1])
        raise _contended(lock_key)

    def _call(
        self,
        queue: str,
        job: NewJob,
        lock: UniqueLock,
        if_absent: bool,
        holder: str,
        envelope_for: Callable[[str], bytes] | None,
        channel: str,
    ) -> tuple[list[str], list[Any]]:
        """The script's keys and arguments for one try, naming ``holder`` ('' for none)."""
        k, flow = self.keys, job.flow
        keys = [k.unique(queue, lock.key), k.levels(queue), k.scheduled(queue)]
        keys += [k.job(queue, job.job_id), k.done(queue, job.job_id), k.queue(queue, flow.priority)]
        replacing = b""
        if holder:
            keys.append(k.job(queue, holder))
            if lock.mode == "debounce":
                if envelope_for is None:
                    raise ValueError("a debounced enqueue needs envelope_for (the call under its holder's id)")
                replacing = envelope_for(holder)
        ttl = DEBOUNCE_GRACE_MS if lock.mode == "debounce" else lock.ttl_ms
        args: list[Any] = [now_ms(), queue, channel, "nx" if if_absent else "", GROUP]
        args += [job.job_id, job.envelope, job.due_ms, job.task, flow.priority, flow.packed()]
        args += [lock.mode, ttl, holder, lock.debounce_ms, lock.debounce_max_ms, replacing, k.wakeup]
        return keys, args


def _reply(reply: list[Any]) -> UniqueReply:
    status, created, job_id, how, due = reply
    return UniqueReply(text(job_id), status_of(status), bool(created), text(how), int(due or 0))


def _contended(lock_key: str) -> BrokerError:
    return BrokerError(
        f"unique lock {lock_key} changed under every one of {MAX_TRIES} tries (other producers keep taking "
        "it): nothing was enqueued, try again"
    )
