"""The app of the first-hour CLI tests (``-A tests.apps.firsthour:app``): tasks with every option that
``resq tasks`` shows, a periodic entry, and a short Redis retry budget (commands against a closed port
give up after 0.1 s instead of 5 s)."""

from __future__ import annotations

from resq import Resq

app = Resq(broker_retry_s=0.1)


def bind(url: str) -> None:
    """Point the app at ``url`` (the test process's database) and namespace ``resq`` (a command run in
    this process with ``-A`` and ``--namespace`` reconfigures this very app)."""
    app.reconfigure(url=url, namespace="resq")


@app.task(name="firsthour.add")
def add(a: int, b: int) -> int:
    return a + b


@app.task(name="firsthour.send_mail", queue="mail", retries=3, backoff=30, timeout=60, soft_timeout=50, result_ttl=3600)
def send_mail(to: str) -> str:
    return to


@app.task(name="firsthour.fail")
def fail(message: str = "boom") -> None:
    raise ValueError(message)


@app.task(name="firsthour.fail_other")
def fail_other() -> None:
    raise KeyError("other")


@app.periodic(name="firsthour.nightly", cron="0 3 * * *")
def nightly() -> None:
    """Runs at 03:00 UTC."""
