"""The app of the dashboard's tests (``resq worker -A tests.apps.web:app``).

``app = Resq()`` reads ``RESQ_REDIS_URL``, which the ``run_worker`` fixture sets; the test process points it
at its own database with :func:`bind`. ``comeback`` fails on its first run and succeeds on the next (a
counter in Redis), so a dead job retried from the dashboard succeeds.
"""

from __future__ import annotations

import os
from typing import Any

import redis

from resq import Resq

app = Resq()

#: The counter of ``comeback``'s runs.
RUNS_KEY = "test:web:comeback:runs"


def bind(url: str) -> None:
    """Point the app at ``url`` (the test process's database)."""
    app.reconfigure(url=url)


@app.task(name="web.fail", queue="web", retries=0)
def fail(message: str) -> None:
    raise ValueError(message)


@app.task(name="web.comeback", queue="web", retries=0)
def comeback(order_id: int) -> str:
    """Dies on its first run, succeeds on every later one."""
    client = redis.Redis.from_url(os.environ["RESQ_REDIS_URL"])
    try:
        runs = int(client.incr(RUNS_KEY))
    finally:
        client.close()
    if runs == 1:
        raise ConnectionError(f"order {order_id}: payment service down")
    return f"order {order_id} paid"


@app.task(name="web.echo", queue="web")
def echo(*args: Any, **kwargs: Any) -> list[Any]:
    return [list(args), kwargs]


@app.task(name="web.login", queue="web", redact=("password",))
def login(user: str, password: str) -> str:
    return user


@app.periodic(cron="0 3 * * *", tz="Europe/Paris", name="web.nightly", queue="web")
def nightly() -> None:
    """A periodic entry for the Cron page."""
