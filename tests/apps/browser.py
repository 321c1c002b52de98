"""The app of the dashboard's browser tests and screenshots (``-A tests.apps.browser:app``).

``app = Resq()`` reads ``RESQ_REDIS_URL``, which ``run_worker`` / ``run_resq`` set; the test process points it
at its own database with :func:`bind`. ``comeback`` fails until the test sets :data:`SWITCH_KEY` in Redis, so
a dead job can be retried from the dashboard and succeed.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis

from resq import Resq

app = Resq()

#: While this Redis key is missing, ``comeback`` fails; once it is set, ``comeback`` succeeds.
SWITCH_KEY = "test:browser:comeback"


def bind(url: str) -> None:
    """Point the app at ``url`` (the test process's database)."""
    app.reconfigure(url=url)


@app.task(name="browser.comeback", retries=0)
def comeback(order_id: int) -> str:
    """Fails (and goes dead at once: no retries) until :data:`SWITCH_KEY` is set."""
    client = redis.Redis.from_url(os.environ["RESQ_REDIS_URL"])
    try:
        switched = client.exists(SWITCH_KEY)
    finally:
        client.close()
    if not switched:
        raise ConnectionError(f"payment gateway refused order {order_id}: connection reset by peer")
    return f"order {order_id} charged"


@app.task(name="browser.add")
def add(a: int, b: int) -> int:
    return a + b


@app.task(name="browser.echo")
def echo(*args: Any, **kwargs: Any) -> list[Any]:
    """Returns what it was given (the job page shows its arguments)."""
    return [list(args), kwargs]


@app.task(name="reports.build", queue="reports")
def build_report(report: str, rows: int = 100) -> int:
    """A job of the ``reports`` queue (the queue the tests pause and resume)."""
    return rows


@app.task(name="mail.send", queue="mail", retries=0)
def send_mail(to: str, subject: str) -> None:
    """Fails like a real SMTP error (dead jobs with a real traceback for the screenshots)."""
    raise TimeoutError(f"SMTP server smtp.example.com:587 timed out sending {subject!r} to {to}")


@app.task(name="images.resize", queue="images", retries=0)
def resize(path: str, width: int) -> str:
    """Fails on a missing file (another kind of dead job)."""
    if path.endswith(".missing.jpg"):
        raise FileNotFoundError(f"[Errno 2] No such file or directory: {path!r}")
    return f"{path}@{width}"


@app.task(name="browser.slow")
def slow(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@app.periodic(cron="0 3 * * *", tz="Europe/Paris", name="reports.nightly", queue="reports")
def nightly_report() -> None:
    """A cron entry (the cron page lists it; no scheduler runs in the tests)."""


@app.periodic(every=300, name="browser.sweep")
def sweep() -> None:
    """An ``every=`` entry, every five minutes."""


# The CakeResque story of docs/workflows.md: a user's new location fans out to four jobs, and a callback
# records the request as fully processed once they all succeeded.


@app.task(name="location.refresh_caches")
def refresh_caches(user_id: int, city: str) -> str:
    return f"caches of {user_id} refreshed for {city}"


@app.task(name="location.send_mails", queue="mail")
def send_location_mails(user_id: int, city: str) -> int:
    return 3


@app.task(name="location.notify_friends")
def notify_friends(user_id: int, city: str) -> int:
    return 12


@app.task(name="location.recommend_friends")
def recommend_friends(user_id: int, city: str) -> list[int]:
    return [7, 19, 23]


@app.task(name="location.processed")
def record_processed(results: list[Any], request_id: str) -> str:
    return f"request {request_id} fully processed ({len(results)} steps)"
