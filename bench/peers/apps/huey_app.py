"""huey: ``huey_consumer huey_app.huey`` (defaults: 1 worker, a thread; blocking BRPOP on its list)."""

from __future__ import annotations

import time

import body
from huey import RedisHuey

huey = RedisHuey("bench", url=body.URL)


@huey.task()
def record(i: int) -> None:
    """The job body."""
    body.record(i)


async def enqueue(i: int) -> None:
    """Queue job ``i``."""
    record(i)


async def enqueue_at(i: int, due: float) -> None:
    """Queue job ``i`` to run at ``due`` (epoch seconds)."""
    record.schedule(args=(i,), delay=max(0.0, due - time.time()))
