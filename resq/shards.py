"""Sharded queues: one logical queue spread over ``N`` shards, each a queue of its own with its own hash tag
(``{ns:ingest#0}`` ... ``{ns:ingest#7}``), so that on a Redis Cluster its jobs spread over the masters
(``@app.task(queue="ingest", shards=8)``, ``docs/scaling.md#a-queue-bigger-than-one-node``).

A producer puts each job on one shard (round-robin, or by the task's ``shard_key``: the same key, the same
shard); a worker serving ``ingest`` reads every shard, starting each fetch at the next one in turn.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from resq.flow import limit_key
from resq.settings import SHARD_SEP

__all__ = ["expand", "logical", "pick", "rotated", "shard_names"]

#: This process's round-robin over shards (one counter for every sharded task: each job takes the next).
_turns = itertools.count()


def shard_names(queue: str, shards: int) -> list[str]:
    """The queues a logical queue is made of: ``queue`` itself when not sharded, else its shards."""
    return [queue] if shards <= 1 else [f"{queue}{SHARD_SEP}{n}" for n in range(shards)]


def logical(queue: str) -> str:
    """The logical queue of a shard (``ingest#3`` -> ``ingest``); any other queue as it is."""
    name, sep, number = queue.rpartition(SHARD_SEP)
    return name if sep and number.isdigit() else queue


def pick(task: str, queue: str, shards: int, key: Callable[..., Any] | None, arguments: dict[str, Any]) -> str:
    """The shard of ``queue`` a new job of ``task`` goes to: by ``key`` (a function of its arguments, by
    name; the same value, the same shard, in every process) or round-robin.

    Raises:
        ConfigError: the key function failed or returned no usable key.
    """
    if key is None:
        number = next(_turns) % shards
    else:
        number = zlib.crc32(limit_key(task, key, arguments, "shard_key").encode()) % shards
    return f"{queue}{SHARD_SEP}{number}"


def rotated(queues: Sequence[str], turn: int) -> list[str]:
    """``queues`` with each run of one logical queue's shards started ``turn`` shards further on (the other
    queues, and the order between queues, as they are): a worker's fetches take from each shard in turn."""
    out: list[str] = []
    for _, run in itertools.groupby(queues, key=logical):
        names = list(run)
        start = turn % len(names)
        out += names[start:] + names[:start]
    return out


def expand(queues: Iterable[str], shards_of: Callable[[str], int]) -> list[str]:
    """``queues`` with each sharded logical queue replaced by its shards, in order."""
    return [name for queue in queues for name in shard_names(queue, shards_of(queue))]
