"""The app of ``throughput.py`` (``-A bench.throughput_app:app`` from the repository root).

Redis comes from ``RESQ_REDIS_URL`` (the benchmark's private server). ``noop`` is both a resq task
(``bench.noop``) and, through ``noop_plain``, a plain function RQ can import by its dotted path.
"""

from __future__ import annotations

import os
from typing import Any

from resq import Resq

app = Resq()


def noop_plain(i: int) -> int:
    """Do nothing; return ``i``."""
    return i


noop = app.task(name="bench.noop")(noop_plain)

#: The same no-op under flow control that never holds a job back (``flow_fetch.py``: what the checks cost).
limited = app.task(name="bench.limited", concurrency=1000)(noop_plain)
rated = app.task(name="bench.rated", rate_limit="1000000/s")(noop_plain)


@app.task(name="bench.mark")
def mark(label: str) -> None:
    """Record the order jobs start in (``groups.py``): one ``RPUSH`` to the benchmark's Redis."""
    _redis().rpush("bench:order", label)


_client: list[object] = []


def _redis() -> Any:
    if not _client:
        import redis

        _client.append(redis.Redis.from_url(os.environ["RESQ_REDIS_URL"]))
    return _client[0]


@app.task(name="bench.total")
def total(results: list[Any]) -> int:
    """A chord's callback (``workflows.py``): the members' results, summed."""
    return sum(results)
