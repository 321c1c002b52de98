"""resq at its defaults: ``resq worker -A resq_app:app -c 1`` (Redis from ``RESQ_REDIS_URL``)."""

from __future__ import annotations

import datetime as dt

import body

from resq import Resq

app = Resq()


@app.task(name="peers.record")
def record(i: int) -> None:
    """The job body."""
    body.record(i)


async def enqueue(i: int) -> None:
    """Queue job ``i``."""
    record.delay(i)


async def enqueue_at(i: int, due: float) -> None:
    """Queue job ``i`` to run at ``due`` (epoch seconds)."""
    record.enqueue_at(dt.datetime.fromtimestamp(due, tz=dt.UTC), i)
