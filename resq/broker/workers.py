"""Workers: the registry, heartbeats, and the remote commands sent to workers through Redis.

The registry stores each worker's deadline (now + 3 heartbeat intervals of *that* worker), so workers
started with different intervals judge each other correctly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from resq.broker.connection import Part, Subscription, publish, text
from resq.clock import now_ms, to_ms

__all__ = ["Workers"]


class Workers(Part):
    """The worker registry and remote control of one namespace."""

    def register(self, worker_id: str, info: Mapping[str, str]) -> None:
        """Record a worker (host, pid, queues, started…) and its first heartbeat."""
        self.heartbeat({worker_id: info})

    def heartbeat(self, workers: Mapping[str, Mapping[str, str]]) -> dict[str, int]:
        """Record that these workers are alive now, with their description (worker id -> host, pid,
        queues, …): a record that was pruned meanwhile (a worker that looked dead for a while, then
        came back) is whole again at its next heartbeat, not a heartbeat alone.

        Returns:
            Each worker's count of heartbeats as Redis holds it (``Keys.beats``, added to at each beat, and
            never expiring while the worker lives): a count not above the last one read means Redis lost
            writes (it came back from an older snapshot, or a replica that lagged took over), so what Redis
            holds of the worker's leases may be older than what the worker holds.
        """
        if not workers:
            return {}
        silent_ms = to_ms(self.settings.heartbeat_interval * 3)
        now = now_ms()
        pipe = self._redis.pipeline(transaction=False)
        pipe.zadd(self.keys.workers, dict.fromkeys(workers, now + silent_ms))
        for worker_id, info in workers.items():
            key = self.keys.worker(worker_id)
            pipe.hset(key, mapping={**info, "heartbeat_ms": now})
            pipe.pexpire(key, silent_ms + 1000)
            pipe.hincrby(self.keys.beats, worker_id, 1)
        replies = pipe.execute()
        return {worker_id: int(replies[3 + 3 * i]) for i, worker_id in enumerate(workers)}

    def show_current(self, current: dict[str, str]) -> None:
        """Record the jobs each worker runs (``worker id -> comma-separated job ids``), in one round trip."""
        pipe = self._redis.pipeline(transaction=False)
        for worker_id, jobs in current.items():
            pipe.hset(self.keys.worker(worker_id), "current", jobs)
        pipe.execute()

    def unregister(self, worker_ids: Sequence[str]) -> None:
        """Forget workers that stopped."""
        if not worker_ids:
            return
        pipe = self._redis.pipeline(transaction=False)
        pipe.zrem(self.keys.workers, *worker_ids)
        pipe.execute_command("DEL", *(self.keys.worker(w) for w in worker_ids))  # one slot: {ns}
        pipe.hdel(self.keys.beats, *worker_ids)
        pipe.execute()

    def live(self) -> set[str]:
        """Ids of the workers whose last heartbeat is within three of their intervals."""
        return {text(w) for w in self._redis.zrangebyscore(self.keys.workers, now_ms(), "+inf")}

    def live_count(self) -> int:
        """How many workers have a fresh heartbeat."""
        return int(self._redis.zcount(self.keys.workers, now_ms(), "+inf"))

    def silent(self) -> list[str]:
        """Ids of the registered workers whose heartbeat deadline has passed (dead, or Redis was away)."""
        return [text(w) for w in self._redis.zrangebyscore(self.keys.workers, "-inf", f"({now_ms()}")]

    def info(self, worker_ids: Sequence[str]) -> list[dict[str, str]]:
        """The recorded description of each worker (empty when it expired)."""
        pipe = self._redis.pipeline(transaction=False)
        for worker_id in worker_ids:
            pipe.hgetall(self.keys.worker(worker_id))
        return [{text(k): text(v) for k, v in row.items()} for row in pipe.execute()]

    # -- remote control ---------------------------------------------------------------------------

    def send_command(self, target: str, state: bytes, message: bytes) -> int:
        """Record ``state`` as the last command for ``target`` and publish ``message``, atomically.

        Returns:
            How many subscribers received the message.
        """
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(self.keys.control_state, target, state)
        publish(pipe, self.keys.control, message)
        return int(pipe.execute()[1])

    def command_state(self, targets: Sequence[str]) -> list[bytes | None]:
        """The last remote command recorded for each target (encoded, or None)."""
        return list(self._redis.hmget(self.keys.control_state, list(targets)))

    def subscribe_commands(self) -> Subscription:
        """A subscription to the remote commands channel."""
        return self.connection.subscribe(self.keys.control)
