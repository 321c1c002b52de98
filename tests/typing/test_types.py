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
