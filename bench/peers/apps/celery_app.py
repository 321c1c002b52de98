"""celery: ``celery -A celery_app worker -P solo`` (the solo pool: one process; no result backend)."""

from __future__ import annotations

import datetime as dt

import body
from celery import Celery

app = Celery("bench", broker=body.URL)
app.conf.broker_connection_retry_on_startup = True  # silences a deprecation warning; the default behaviour


@app.task(name="record")
def record(i: int) -> None:
    """The job body."""
    body.record(i)


async def enqueue(i: int) -> None:
    """Queue job ``i``."""
    record.delay(i)


async def enqueue_at(i: int, due: float) -> None:
    """Queue job ``i`` to run at ``due`` (epoch seconds)."""
    record.apply_async((i,), eta=dt.datetime.fromtimestamp(due, tz=dt.UTC))
