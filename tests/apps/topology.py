"""The app of the scale-out tests (``-A tests.apps.topology:app``): Redis through Sentinel (or a Cluster),
from ``RESQ_REDIS_URL``; each run of ``record`` is counted in a plain Redis named by ``TOPO_COUNT_URL`` (the
test suite's own server), so that a test can tell a job run twice from one run once."""

from __future__ import annotations

import os

import redis

from resq import Resq

app = Resq(broker_retry_s=30.0, heartbeat_interval=1.0)


def bind(url: str) -> None:
    """Point the app at ``url`` (the test process's topology)."""
    app.reconfigure(url=url, broker_retry_s=30.0, heartbeat_interval=1.0)


@app.task(name="topo.record", retries=3, backoff=0)
def record(n: int) -> int:
    client = redis.Redis.from_url(os.environ["TOPO_COUNT_URL"])
    try:
        client.hincrby("topo:runs", str(n), 1)
    finally:
        client.close()
    return n


@app.task(name="topo.square")
def square(n: int) -> int:
    return n * n


@app.task(name="topo.total")
def total(results: list[int], extra: int = 0) -> int:
    """A chord's callback (its members' results first) or a depends_on job."""
    return sum(results) + extra


@app.task(name="topo.tally")
def tally(status: dict[str, object]) -> object:
    """A batch's callback: the number of its jobs that succeeded."""
    return status["succeeded"]


@app.task(name="topo.ingest", queue="ingest", shards=6)
def ingest(n: int) -> int:
    """A job of a queue spread over 6 shards (``{resq:ingest#0}`` ... ``{resq:ingest#5}``), counted as
    ``record`` counts."""
    return record(n)
