"""Type-checked (by mypy in `make test`), not executed: the public API types user code correctly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import assert_type

from resq import Job, Resq, Task

app = Resq("redis://127.0.0.1:1/0")


@app.task(retries=3, queue="mail")
def send_mail(to: str, subject: str) -> str:
    return f"{to}:{subject}"


@app.task
def add(a: int, b: int) -> int:
    return a + b


@app.periodic(every=5)
def ping(host: str) -> bool:
    return bool(host)


@app.periodic(cron="*/5 * * * *", tz="Europe/Paris", retries=2)
def refresh() -> None:
    return None


def report(day: str) -> int:
    return len(day)


report_task = app.periodic(report, every=86400, args=("today",))


def check_types() -> None:
    task: Task[[str, str], str] = send_mail
    assert_type(task.name, str)
    assert_type(add(1, 2), int)
    assert_type(send_mail.delay("a@b.c", "hi"), Job[str])
    assert_type(add.enqueue_in(timedelta(minutes=5), 1, 2), Job[int])
    assert_type(add.enqueue_at(datetime(2030, 1, 1, tzinfo=UTC), 1, 2), Job[int])
    assert_type(add.apply_async((1, 2), queue="urgent"), Job[int])
    assert_type(add.delay(1, 2).result(timeout=5), int)
    add.delay("one", 2)  # type: ignore[arg-type]
    periodic_task: Task[[str], bool] = ping
    assert_type(ping.delay("example.org"), Job[bool])
    assert_type(refresh.delay().result(timeout=5), None)
    daily: Task[[str], int] = report_task
    assert_type(report_task.enqueue_in(60, "monday"), Job[int])
    ping.delay(42)  # type: ignore[arg-type]
    assert_type(periodic_task.name, str)
    assert_type(daily.name, str)
