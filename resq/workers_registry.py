"""The Redis side of live workers: registry, heartbeats, pub/sub subscriptions and remote-command state.

A part of :class:`resq.broker.Broker` (which mixes it in), kept in its own module so that each stays
small; like the broker it is one of the few places that send Redis commands.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from resq.clock import now_ms, to_ms
from resq.keys import Keys
from resq.settings import Settings

__all__ = ["WorkerRegistry"]


class WorkerRegistry:
    """Worker registry operations, mixed into :class:`resq.broker.Broker`."""

    keys: Keys
    settings: Settings

    @property
    def client(self) -> Any:
        """The Redis client (provided by the broker)."""
        raise NotImplementedError

    # -- pub/sub ----------------------------------------------------------------------------------

    def subscribe(self, channel: str) -> Any:
        """A pub/sub subscription to ``channel`` (wake-ups, remote commands); read with ``get_message``."""
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(channel)
        return pubsub

    def control_state(self, targets: Sequence[str]) -> list[bytes | None]:
        """The last remote command recorded for each target (msgpack, or None)."""
        return list(self.client.hmget(self.keys.control_state, list(targets)))

    # -- workers ----------------------------------------------------------------------------------

    def register_worker(self, worker_id: str, info: dict[str, str]) -> None:
        """Record a worker (host, pid, queues, started…) and its first heartbeat."""
        self.client.hset(self.keys.worker(worker_id), mapping=info)
        self.heartbeat([worker_id])

    def heartbeat(self, worker_ids: Sequence[str]) -> None:
        """Record that these workers are alive now.

        The registry stores each worker's deadline (now + 3 heartbeat intervals of *that* worker), so
        workers with different intervals judge each other correctly.
        """
        if not worker_ids:
            return
        silent_ms = to_ms(self.settings.heartbeat_interval * 3)
        now = now_ms()
        pipe = self.client.pipeline(transaction=False)
        pipe.zadd(self.keys.workers, dict.fromkeys(worker_ids, now + silent_ms))
        for worker_id in worker_ids:
            pipe.hset(self.keys.worker(worker_id), "heartbeat_ms", now)
            pipe.pexpire(self.keys.worker(worker_id), silent_ms + 1000)
        pipe.execute()

    def unregister_workers(self, worker_ids: Sequence[str]) -> None:
        """Forget workers that stopped."""
        if not worker_ids:
            return
        pipe = self.client.pipeline(transaction=False)
        pipe.zrem(self.keys.workers, *worker_ids)
        pipe.delete(*(self.keys.worker(w) for w in worker_ids))
        pipe.execute()

    def live_workers(self) -> set[str]:
        """Ids of the workers whose last heartbeat is within three of their intervals."""
        return {_text(w) for w in self.client.zrangebyscore(self.keys.workers, now_ms(), "+inf")}

    def prune_workers(self) -> list[str]:
        """Drop workers silent for three intervals from the registry; returns their ids."""
        gone = [_text(w) for w in self.client.zrangebyscore(self.keys.workers, "-inf", f"({now_ms()}")]
        if gone:
            self.unregister_workers(gone)
        return gone

    def worker_info(self, worker_ids: Sequence[str]) -> list[dict[str, str]]:
        """The recorded description of each worker."""
        pipe = self.client.pipeline(transaction=False)
        for worker_id in worker_ids:
            pipe.hgetall(self.keys.worker(worker_id))
        return [{_text(k): _text(v) for k, v in row.items()} for row in pipe.execute()]


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
