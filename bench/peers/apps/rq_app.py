"""rq: ``rq worker -w rq.worker.SimpleWorker`` (no fork per job; ``--with-scheduler`` for delayed jobs)."""

from __future__ import annotations

import datetime as dt

import body
from redis import Redis
from rq import Queue

_queue: Queue | None = None


def queue() -> Queue:
    """The producer's queue ``default``."""
    global _queue
    if _queue is None:
        _queue = Queue(connection=Redis.from_url(body.URL))
    return _queue


def record(i: int) -> None:
    """The job body."""
    body.record(i)


async def enqueue(i: int) -> None:
    """Queue job ``i``."""
    queue().enqueue(record, i)


async def enqueue_at(i: int, due: float) -> None:
    """Queue job ``i`` to run at ``due`` (epoch seconds)."""
    queue().enqueue_at(dt.datetime.fromtimestamp(due, tz=dt.UTC), record, i)
