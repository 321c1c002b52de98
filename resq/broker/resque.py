"""The Resque family's wire format (Ruby Resque, php-resque, CakeResque, node-resque), spoken on the same
Redis: their keys, under their own namespace (``resque`` by default), and their JSON
(``docs/resque.md``, ``../shared/reference/resque-family.md`` §4).

A job is a JSON object ``{"class": ..., "args": [...], ...}`` pushed (``RPUSH``) onto the list
``<ns>:queue:<name>``, whose name is added to the set ``<ns>:queues`` in the same round trip. A delayed job,
as resque-scheduler keeps it, is an item ``{"class", "args", "queue"}`` in the list ``<ns>:delayed:<ts>``
(whole seconds), ``<ts>`` in the zset ``<ns>:delayed_queue_schedule`` and ``delayed:<ts>`` in the set
``<ns>:timestamps:<item>``. Keys of the Resque family share no hash tag: on a Redis Cluster each command
goes to its own key's node, as the Resque family sends them.
"""

from __future__ import annotations

from resq.broker.connection import Part, Pipeline
from resq.broker.keys import ResqueKeys

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
