"""Apps for the scheduler tests (``resq worker|scheduler -A tests.apps.sched:app``).

``app`` has plain tasks; ``periodic_app`` has the same kind of recorder plus an ``every=1`` entry. Both
are ``Resq()``, reading ``RESQ_REDIS_URL``; the test process points them at its database with :func:`bind`.
Tasks record what happened in Redis lists (msgpack ``[started_at, due, job_id]``), read back by the tests.
"""

from __future__ import annotations

import time

from resq import Resq, current_job
from resq.codec import pack
from tests.topology import client_for

app = Resq()
periodic_app = Resq()

#: The list the ``every=1`` entry appends its start times to.
FIRES_KEY = "test:sched:fires"


def bind(url: str) -> None:
    """Point both apps of this module at ``url``."""
    for each in (app, periodic_app):
        each.reconfigure(url=url)


def _append(url: str, key: str, due: float | None) -> None:
    started = time.time()
    job = current_job()
    client = client_for(url)
    try:
        client.rpush(key, pack([started, due, job.id if job else None]))
    finally:
        client.close()


@app.task(name="sched.record")
def record(key: str, due: float | None = None) -> None:
    """Append ``[now, due, job id]`` to ``key``."""
    _append(app.settings.url, key, due)


@app.task(name="sched.noop")
def noop(*args: object, **kwargs: object) -> None:
    """Does nothing (jobs that only need to exist)."""


@periodic_app.periodic(every=1, name="sched.every_second")
def every_second() -> None:
    """Append its start time to ``FIRES_KEY``, once per second."""
    _append(periodic_app.settings.url, FIRES_KEY, None)
