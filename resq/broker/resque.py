"""The Resque family's wire format (Ruby Resque, php-resque, CakeResque, node-resque), spoken on the same
Redis: their keys, under their own namespace (``resque`` by default), and their JSON
(``docs/resque.md``, ``../shared/reference/resque-family.md`` §4).

A job is a JSON object ``{"class": ..., "args": [...], ...}`` pushed (``RPUSH``) onto the list
``<ns>:queue:<name>``, whose name is added to the set ``<ns>:queues`` in the same round trip. A delayed job,
as resque-scheduler keeps it, is an item ``{"class", "args", "queue"}`` in the list ``<ns>:delayed:<ts>``
(whole seconds), ``<ts>`` in the zset ``<ns>:delayed_queue_schedule`` and ``delayed:<ts>`` in the set
``<ns>:timestamps:<item>``. Keys of the Resque family share no hash tag: on a Redis Cluster each command
goes to its own key's node, as the Resque family sends them. Taking jobs from their queues
(``resque_take.lua``) moves a job between keys atomically, which needs one Redis (or Sentinel).

A job a resq worker takes moves into the worker's in-flight hash (``ResqueKeys.in_flight``) under the next
number of the namespace's sequence, until the worker has made a resq job of it (``resq.worker.resque``).
"""

from __future__ import annotations

from collections.abc import Sequence

from resq.broker.connection import Part, Pipeline, text
from resq.broker.keys import ResqueKeys

#: How long php-resque keeps the status of a job that ended, in seconds.
STATUS_TTL_S = 86_400

__all__ = ["ResqueWire"]


class ResqueWire(Part):
    """Resque-family writes: jobs for their workers, delayed jobs for their schedulers, status keys."""

    def enqueue(self, keys: ResqueKeys, queue: str, payload: str, status: tuple[str, str] | None = None) -> None:
        """Push a job's JSON onto ``queue`` and name the queue in the set of queues, in one round trip
        (``status``: the job's id and php-resque's status JSON for it, written first)."""

        def build(pipe: Pipeline) -> None:
            if status is not None:
                pipe.set(keys.status(status[0]), status[1])
            pipe.sadd(keys.queues, queue)
            pipe.rpush(keys.queue(queue), payload)

        self.connection.with_retry(lambda: self.connection.pipeline(build))

    def enqueue_at(self, keys: ResqueKeys, timestamp: int, item: str, status: tuple[str, str] | None = None) -> None:
        """Add a delayed item due at ``timestamp`` (whole seconds), as resque-scheduler does: the item
        pushed onto its second's list, the second in the schedule, the reverse index."""

        def build(pipe: Pipeline) -> None:
            if status is not None:
                pipe.set(keys.status(status[0]), status[1])
            pipe.rpush(keys.delayed(timestamp), item)
            pipe.sadd(keys.timestamps(item), keys.delayed_member(timestamp))
            pipe.zadd(keys.delayed_schedule, {str(timestamp): timestamp})

        self.connection.with_retry(lambda: self.connection.pipeline(build))

    # -- resq workers taking Resque jobs ------------------------------------------------------------

    def take(
        self,
        keys: ResqueKeys,
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        dead_at_ms: int,
        most_waiting: int | None = None,
    ) -> list[tuple[int, str, str]]:
        """Move up to ``limit`` jobs from the heads of ``queues`` (in order) into the worker's in-flight
        hash, atomically; returns each one's number, queue and payload. ``dead_at_ms``: when the worker
        counts as dead if it does not take again (another worker then recovers its in-flight jobs).
        ``most_waiting``: take from a queue only as many as its resq queue (its priority-0 and front
        streams) has room for below that many entries (None: no such limit)."""
        script_keys = [keys.in_flight(worker_id), keys.sequence, keys.in_flight_owners]
        for queue in queues:
            script_keys += [keys.queue(queue), self.keys.queue(queue), self.keys.front(queue)]
        room = 2**31 if most_waiting is None else most_waiting
        flat = self.connection.script("resque_take", script_keys, [limit, worker_id, dead_at_ms, room, *queues])
        return [(int(flat[i]), text(flat[i + 1]), text(flat[i + 2])) for i in range(0, len(flat), 3)]

    def in_flight(self, keys: ResqueKeys, worker_id: str) -> list[tuple[int, str, str]]:
        """The jobs in a worker's in-flight hash (number, queue, payload), oldest first."""
        found = self.connection.client.hgetall(keys.in_flight(worker_id))
        entries = [(int(number), text(value).partition("\n")) for number, value in found.items()]
        return [(number, queue, payload) for number, (queue, _, payload) in sorted(entries)]

    def settle(self, keys: ResqueKeys, worker_id: str, numbers: Sequence[int]) -> None:
        """Drop jobs from a worker's in-flight hash (resq jobs were made of them, or failure records)."""
        if numbers:
            self.connection.client.hdel(keys.in_flight(worker_id), *numbers)

    def dead_owners(self, keys: ResqueKeys, now_ms: int) -> list[str]:
        """The workers whose in-flight hashes are past their deadline (the workers died)."""
        return [text(w) for w in self.connection.client.zrangebyscore(keys.in_flight_owners, "-inf", now_ms)]

    def register_worker(self, keys: ResqueKeys, worker_id: str, started: str, beat: str) -> None:
        """Show a worker as the Resque family's tools list them: in ``workers``, with its start time and a
        heartbeat."""

        def build(pipe: Pipeline) -> None:
            pipe.sadd(keys.workers, worker_id)
            pipe.set(keys.worker_started(worker_id), started)
            pipe.hset(keys.heartbeats, worker_id, beat)

        self.connection.pipeline(build)

    def heartbeat(self, keys: ResqueKeys, worker_id: str, beat: str) -> None:
        """A worker's heartbeat, as Ruby Resque reads it (``workers:heartbeat``)."""
        self.connection.client.hset(keys.heartbeats, worker_id, beat)

    def unregister_worker(self, keys: ResqueKeys, worker_id: str) -> None:
        """Remove a worker (stopped, or found dead after its in-flight jobs were recovered) and its
        bookkeeping, as a Resque worker does on exit."""

        def build(pipe: Pipeline) -> None:
            pipe.srem(keys.workers, worker_id)
            pipe.hdel(keys.heartbeats, worker_id)
            pipe.delete(
                keys.worker_started(worker_id),
                keys.stat("processed", worker_id),
                keys.stat("failed", worker_id),
                keys.in_flight(worker_id),
            )
            pipe.zrem(keys.in_flight_owners, worker_id)

        self.connection.pipeline(build)

    def tracked(self, keys: ResqueKeys, job_ids: Sequence[str]) -> set[str]:
        """The ids of ``job_ids`` whose php-resque status is kept (their status key exists)."""

        def build(pipe: Pipeline) -> None:
            for job_id in job_ids:
                pipe.exists(keys.status(job_id))

        return {job_id for job_id, found in zip(job_ids, self.connection.pipeline(build), strict=True) if found}

    def track(self, keys: ResqueKeys, job_id: str, status: str, ended: bool = False) -> None:
        """Update a tracked job's php-resque status (its key exists); ``ended``: kept ``STATUS_TTL_S``."""
        if ended:
            self.connection.client.set(keys.status(job_id), status, xx=True, ex=STATUS_TTL_S)
        else:
            self.connection.client.set(keys.status(job_id), status, xx=True, keepttl=True)

    def failed(
        self,
        keys: ResqueKeys,
        worker_id: str,
        record: str,
        in_flight: tuple[str, int] | None = None,
        status: tuple[str, str] | None = None,
    ) -> None:
        """Add a failure record to ``failed`` and count the job processed and failed (by ``worker_id``);
        ``in_flight``: the worker whose in-flight hash holds the job, and its number there, dropped in the
        same round trip; ``status``: the job's id and final php-resque status, written if it is tracked
        (kept ``STATUS_TTL_S``)."""

        def build(pipe: Pipeline) -> None:
            if status is not None:
                pipe.set(keys.status(status[0]), status[1], xx=True, ex=STATUS_TTL_S)
            pipe.rpush(keys.failed, record)
            for name in ("processed", "failed"):
                pipe.incr(keys.stat(name))
                pipe.incr(keys.stat(name, worker_id))
            if in_flight is not None:
                pipe.hdel(keys.in_flight(in_flight[0]), in_flight[1])

        self.connection.with_retry(lambda: self.connection.pipeline(build))

    # -- delayed jobs (resque-scheduler's, php-resque-ex-scheduler's) ----------------------------------

    def due_seconds(self, keys: ResqueKeys, now_s: int, limit: int, php: bool = False) -> list[int]:
        """The earliest ``limit`` seconds of the schedule (``php``: php-resque-ex-scheduler's) due at
        ``now_s``."""
        found = self.connection.client.zrangebyscore(keys.schedule(php), "-inf", now_s, start=0, num=limit)
        return [int(text(ts)) for ts in found]

    def next_second(self, keys: ResqueKeys, after_s: int, php: bool = False) -> int | None:
        """The earliest second of the schedule after ``after_s`` (None: nothing is delayed that late)."""
        found = self.connection.client.zrangebyscore(
            keys.schedule(php), f"({after_s}", "+inf", start=0, num=1, withscores=True
        )
        return int(found[0][1]) if found else None

    def delayed_items(self, keys: ResqueKeys, timestamp: int, limit: int, php: bool = False) -> list[str]:
        """The first ``limit`` items of a second's list."""
        items = self.connection.client.lrange(keys.second(timestamp, php), 0, limit - 1)
        return [text(item) for item in items]

    def move_delayed(
        self, keys: ResqueKeys, timestamp: int, items: Sequence[tuple[str, str, str]], php: bool = False
    ) -> int:
        """Move the head of a second's list, read as ``items`` (item, queue, the job to push there), into
        their queues, atomically; returns how many moved (0 when the list no longer starts with them:
        another scheduler moved them)."""
        script_keys = [keys.schedule(php), keys.second(timestamp, php), keys.queues]
        args: list[str | int] = [timestamp, "" if php else keys.delayed_member(timestamp)]
        for item, queue, job in items:
            script_keys += [keys.timestamps(item), keys.queue(queue)]
            args += [item, queue, job]
        return int(self.connection.script("resque_promote", script_keys, args))

    def waiting(self, keys: ResqueKeys, statuses: Sequence[tuple[str, str]]) -> None:
        """Write the php-resque statuses of tracked jobs just queued (their ids and status JSON)."""

        def build(pipe: Pipeline) -> None:
            for job_id, status in statuses:
                pipe.set(keys.status(job_id), status)

        if statuses:
            self.connection.pipeline(build)
