"""dramatiq: ``dramatiq dramatiq_app --processes 1`` (one worker process, its default 8 threads)."""

from __future__ import annotations

import time

import body
import dramatiq
from dramatiq.brokers.redis import RedisBroker

dramatiq.set_broker(RedisBroker(url=body.URL))


@dramatiq.actor
def record(i: int) -> None:
    """The job body."""
    body.record(i)


async def enqueue(i: int) -> None:
    """Queue job ``i``."""
    record.send(i)


async def enqueue_at(i: int, due: float) -> None:
    """Queue job ``i`` to run at ``due`` (epoch seconds)."""
    record.send_with_options(args=(i,), delay=max(0, int((due - time.time()) * 1000)))
