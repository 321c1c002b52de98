"""What operators read and repair: queue sizes and ages, clearing a queue, scheduled jobs, live events.

The operator's logic (what to show, in which order, as which records) lives in :mod:`resq.ops`; this
part only reads and writes what the scripts keep, in batched pipelines so that it stays fast on 100k jobs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from redis.exceptions import ResponseError

from resq.broker.connection import Part, Pipeline, Subscription, text
from resq.broker.queues import GROUP

__all__ = ["BATCH", "Admin"]

#: Ids handled per pipelined round trip by the bulk actions.
BATCH = 1000


class Admin(Part):
    """Reads and repairs for ``resq stats``, ``resq queue clear``, ``resq dead``, ``resq scheduled`` and the metrics."""

    def queue_sizes(self, queues: Sequence[str]) -> list[tuple[int, int, int]]:
        """``(entries in its streams and grouped jobs waiting, scheduled, dead)`` of each queue, in one
        round trip."""
        pipe = self._redis.pipeline(transaction=False)
        k = self.keys
        for name in queues:
            for stream in k.streams(name):
                pipe.xlen(stream)
            # Grouped jobs wait in no stream; those of paused groups in the held set.
            pipe.zcard(k.grouped(name))
            pipe.zcard(k.grouped_held(name))
            pipe.zcard(k.scheduled(name))
            pipe.zcard(k.dead(name))
        waiting = len(k.streams("q")) + 2  # replies per queue that count waiting jobs, then scheduled, dead
        n, each = [int(size) for size in pipe.execute()], waiting + 2
        rows = [n[each * i : each * (i + 1)] for i in range(len(queues))]
        return [(sum(row[:waiting]), row[waiting], row[waiting + 1]) for row in rows]

    def lease_state(self, queue: str) -> tuple[int, int | None]:
        """``(leased entries, time the oldest undelivered entry was added in ms or None)`` of a queue
        (its front stream and its own)."""
        leased, oldest = 0, None
        for stream in self.keys.streams(queue):
            pending, added = self._stream_lease_state(stream)
            leased += pending
            oldest = added if oldest is None or (added is not None and added < oldest) else oldest
        return leased, oldest

    def _stream_lease_state(self, stream: str) -> tuple[int, int | None]:
        try:
            groups = self._redis.xinfo_groups(stream)
        except ResponseError:  # no stream yet
            return 0, None
        group = next((g for g in groups if text(g["name"]) == GROUP), None)
        if group is None:
            start, pending = "-", 0
        else:
            start, pending = "(" + text(group["last-delivered-id"]), int(group["pending"])
        first = self._redis.xrange(stream, start, "+", count=1)
        return pending, (int(text(first[0][0]).split("-", 1)[0]) if first else None)

    def set_aside(self, key: str) -> str:
        """Move a key of the wrong type out of resq's way (something else wrote to it): renamed to
        ``Keys.broken`` with its value kept for a look, so that resq recreates the key it needs. Returns
        the new name ("" when the key was gone meanwhile)."""
        return self._set_aside(key)

    def ping(self) -> None:
        """Check that Redis answers (raises ``BrokerUnavailable`` when it does not)."""
        self._redis.ping()

    def namespaces(self, limit: int = 20) -> list[str]:
        """Namespaces that hold resq keys on this database (their ``{ns}:queues`` set), sorted.

        Uses ``SCAN`` with a ``MATCH`` and a ``COUNT`` (never ``KEYS``); stops after ``limit`` names.
        """
        found: set[str] = set()
        for key in self._redis.scan_iter(match="{*}:queues", count=1000):
            name = text(key)
            if name.startswith("{") and name.endswith("}:queues") and name.count("}") == 1:
                found.add(name[1 : -len("}:queues")])
                if len(found) >= limit:
                    break
        return sorted(found)

    def dead_page(self, queue: str, until_ms: int, offset: int, count: int) -> list[str]:
        """Up to ``count`` ids of jobs of ``queue`` dead at or before ``until_ms``, oldest first, skipping
        the first ``offset`` of them (for filters that leave some jobs in the dead set)."""
        rows = self._redis.zrangebyscore(self.keys.dead(queue), "-inf", until_ms, start=offset, num=count)
        return [text(job_id) for job_id in rows]

    def dead_counts(self, queues: Sequence[str]) -> list[int]:
        """The size of each queue's dead set."""
        pipe = self._redis.pipeline(transaction=False)
        for name in queues:
            pipe.zcard(self.keys.dead(name))
        return [int(n) for n in pipe.execute()]

    def clear_queue(self, queue: str) -> int:
        """Delete the entries of a queue's streams (its front and its own) and its scheduled set, and the
        records of their jobs.

        The stream and its consumer group stay (workers blocked on the queue carry on); leases of the
        deleted entries are acknowledged. Running jobs lose their records too (their workers' outcomes
        then change nothing). Dead jobs are kept.

        Returns:
            How many jobs were removed.
        """
        k = self.keys
        removed = 0
        for stream in k.streams(queue):
            if not self._redis.exists(stream):
                continue
            self._ensure_group(stream)
            while entries := self._redis.xrange(stream, "-", "+", count=BATCH):
                ids = [text(f[b"id"]) for _, f in entries if b"id" in f]
                entry_ids = [e for e, _ in entries]
                self._drop(queue, ids, functools.partial(_forget_entries, stream=stream, entries=entry_ids))
                removed += len(ids)
        while members := self._redis.zrange(k.scheduled(queue), 0, BATCH - 1):
            ids = [text(m) for m in members]
            self._drop(queue, ids, lambda pipe: pipe.zrem(k.scheduled(queue), *members))
            removed += len(ids)
        return removed

    def _ensure_group(self, stream: str) -> None:
        """Create the stream's group if no worker did yet (the entries' leases are acknowledged in it)."""
        try:
            self._redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _drop(self, queue: str, ids: Sequence[str], also: Callable[[Pipeline], Any]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        also(pipe)
        k = self.keys
        for job_id in ids:
            pipe.execute_command("DEL", k.job(queue, job_id), k.done(queue, job_id))  # one slot: the queue's
        pipe.execute()

    def scheduled(self, queues: Sequence[str], limit: int) -> list[tuple[int, str, str]]:
        """``(due ms, job id, queue)`` of the ``limit`` scheduled jobs due soonest over ``queues``."""
        pipe = self._redis.pipeline(transaction=False)
        for queue in queues:
            pipe.zrange(self.keys.scheduled(queue), 0, limit - 1, withscores=True)
        rows = [
            (int(score), text(job_id), queue)
            for queue, found in zip(queues, pipe.execute(), strict=True)
            for job_id, score in found
        ]
        return sorted(rows)[:limit]

    def stream_entries(
        self, queue: str, front: bool, after: str | None, count: int
    ) -> list[tuple[str, str, bytes | None]]:
        """Up to ``count`` entries of one of ``queue``'s streams (its front or its own), oldest first,
        after the entry id ``after`` (from the first when None): ``(entry id, job id, envelope or
        None)``. One ``XRANGE … COUNT``; an entry without a job id is skipped."""
        start = "-" if after is None else "(" + after
        rows = self._redis.xrange(self.keys.stream(queue, front), start, "+", count=count)
        return [
            (text(entry), text(fields[b"id"]), fields.get(b"envelope")) for entry, fields in rows if b"id" in fields
        ]

    def events(self) -> Subscription:
        """A subscription to the lifecycle events every transition publishes."""
        return self.connection.subscribe(self.keys.events)


def _forget_entries(pipe: Pipeline, stream: str, entries: Sequence[bytes]) -> None:
    """Acknowledge (no lease outlives its entry) and delete stream entries."""
    pipe.xack(stream, GROUP, *entries)
    pipe.xdel(stream, *entries)
