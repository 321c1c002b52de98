"""Eager mode: ``Resq(eager=True)`` and ``resq.testing.eager(app)`` run jobs in the caller, without Redis.

Every app here points at a port nothing listens on: a single connection attempt would fail the test
(``BrokerUnavailable`` after ``broker_retry_s``), and the app must end with no broker at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from resq import (
    ArgumentsError,
    ConfigError,
    EncodeError,
    Job,
    JobFailed,
    JobStatus,
    Resq,
    Retry,
    SkipJob,
    UnknownJob,
    current_job,
)
from resq.producer import enqueue
from resq.testing import EagerRunner, eager


@pytest.fixture
def app(free_port: int) -> Iterator[Resq]:
    app = Resq(f"redis://127.0.0.1:{free_port}/0", eager=True, broker_retry_s=0.2, connect_timeout=0.1)
    yield app
    assert app._broker is None, "eager mode opened a connection to Redis"


def record_hooks(app: Resq) -> list[tuple[str, int]]:
    """Register an app hook for every job hook; each appends ``(hook, attempt)``."""
    seen: list[tuple[str, int]] = []

    def recorder(name: str) -> Any:
        return lambda job, *rest: seen.append((name, job.attempt))

    for name in ("before_enqueue", "after_enqueue", "before_perform", "after_perform", "on_success"):
        app.on(name)(recorder(name))
    for name in ("on_failure", "on_retry", "on_dead"):
        app.on(name)(recorder(name))

    @app.on("around_perform")
    @contextlib.contextmanager
    def around(job: Job[Any]) -> Iterator[None]:
        seen.append(("around_enter", job.attempt))
        yield
        seen.append(("around_exit", job.attempt))

    return seen


def test_delay_runs_the_job_inline_with_its_hooks_and_result(app: Resq) -> None:
    # Given an eager app with hooks, and a task that sees its arguments after a msgpack round trip
    seen = record_hooks(app)

    @app.task(name="pair")
    def pair(items: Any, *, scale: int) -> dict[str, Any]:
        job = current_job()
        assert job is not None and job.status() == "running"
        return {"items": items, "type": type(items).__name__, "scaled": [i * scale for i in items]}

    # When the task is delayed with a tuple
    job = pair.delay((1, 2), scale=10)
    # Then it already ran, in this process: the tuple arrived as a list, and the handle reads the record
    assert job.status() == JobStatus.SUCCEEDED
    assert job.result() == {"items": [1, 2], "type": "list", "scaled": [10, 20]}
    assert seen == [
        ("before_enqueue", 0),
        ("after_enqueue", 0),
        ("before_perform", 1),
        ("around_enter", 1),
        ("around_exit", 1),
        ("after_perform", 1),
        ("on_success", 1),
    ]
    info = app.job(job.id).info()
    assert (info["status"], info["attempts"], info["result"], info["error"]) == ("succeeded", 1, job.result(), None)
    assert (info["args"], info["kwargs"], info["worker"]) == ([[1, 2]], {"scale": 10}, "eager")
    assert [e["event"] for e in info["history"]] == ["enqueued", "started", "succeeded"]
    assert info["enqueued_at"] <= info["started_at"] <= info["finished_at"]


def test_retries_run_at_once_and_a_failure_goes_through_the_failure_path(app: Resq) -> None:
    # Given tasks with long backoffs: one fails twice then succeeds, one always fails
    seen = record_hooks(app)

    @app.task(name="flaky", retries=3, backoff=3600)
    def flaky() -> int:
        job = current_job()
        assert job is not None
        if job.attempt < 3:
            raise Retry(delay=3600) if job.attempt == 2 else ConnectionError("not yet")
        return job.attempt

    @app.task(name="doomed", retries=1, backoff=3600)
    def doomed() -> None:
        raise ValueError("always")

    # When both are delayed
    began = time.monotonic()
    ok, bad = flaky.delay(), doomed.delay()
    # Then every attempt ran now, without waiting for the backoff (an hour) or Retry(delay=)
    assert time.monotonic() - began < 5
    assert ok.result() == 3
    assert [h for h in seen if h[0] in ("on_failure", "on_retry", "on_dead", "on_success")] == [
        ("on_failure", 1),
        ("on_retry", 1),
        ("on_failure", 2),
        ("on_retry", 2),
        ("on_success", 3),
        ("on_failure", 1),
        ("on_retry", 1),
        ("on_failure", 2),
        ("on_dead", 2),
    ]
    assert bad.status() == "dead"
    with pytest.raises(JobFailed) as failed:
        bad.result()
    assert (failed.value.exc_type, failed.value.exc_message) == ("ValueError", "always")
    assert "raise ValueError" in failed.value.traceback
    events = [e["event"] for e in bad.info()["history"]]
    assert events == ["enqueued", "started", "failed", "retrying", "started", "failed", "dead"]
    assert ok.info()["error"]["type"] == "resq.errors.Retry"  # the last failed attempt's error, kept after success


def test_what_cannot_be_carried_fails_as_in_a_worker(app: Resq) -> None:
    @app.task(name="give_back")
    def give_back(value: Any) -> Any:
        return value

    @app.task(name="bad_result", retries=3)
    def bad_result() -> object:
        return {1, 2}

    runner = app.inline
    assert isinstance(runner, EagerRunner)
    # An argument msgpack cannot carry raises at .delay(), and nothing is recorded
    with pytest.raises(EncodeError):
        give_back.delay({1, 2})
    with pytest.raises(EncodeError):
        give_back.delay(datetime(2024, 1, 1))  # naive
    # Arguments that do not fit the signature raise too
    with pytest.raises(ArgumentsError, match="nothing was enqueued"):
        give_back.delay(1, 2)
    assert len(runner.jobs) == 0
    # A result that cannot be encoded makes the job dead at once, not retried
    job = bad_result.delay()
    assert (job.status(), job.info()["attempts"]) == ("dead", 1)
    assert job.info()["error"]["type"] == "resq.errors.EncodeError"
    # An unknown task name (enqueued by name) is dead, as in a worker
    stray = enqueue(app, "nowhere.missing", [], queue="default").job
    assert stray.status() == "dead"
    assert stray.info()["error"]["message"] == "unknown task 'nowhere.missing'"


def test_delays_are_ignored_and_other_ways_of_enqueueing_work(app: Resq) -> None:
    calls: list[str] = []

    @app.task(name="note", queue="notes")
    def note(text: str) -> str:
        calls.append(text)
        return text.upper()

    @app.task(name="skipped")
    def skipped() -> None:
        calls.append("skipped ran")

    app.on("before_perform")(lambda job: _skip(job))
    # enqueue_in and enqueue_at run at once (like Celery's eager mode, countdown and ETA are ignored)
    assert note.enqueue_in(timedelta(hours=1), "later").result() == "LATER"
    assert note.enqueue_at(datetime.now(UTC) + timedelta(days=1), "tomorrow").result() == "TOMORROW"
    job = note.apply_async(("routed",), queue="urgent", job_id="fixed-id")
    assert (job.queue, job.result()) == ("urgent", "ROUTED")
    assert app.job("fixed-id").result() == "ROUTED"  # found by id, its queue looked up in memory
    # A finished job's id may be used again: a new job replaces it, as in Redis
    assert note.apply_async(("again",), queue="urgent", job_id="fixed-id").result() == "AGAIN"
    assert calls == ["later", "tomorrow", "routed", "again"]
    # A job skipped by before_perform is cancelled; cancelling a final job changes nothing
    cancelled = skipped.delay()
    assert cancelled.status() == "cancelled"
    assert cancelled.cancel() == "cancelled"
    with pytest.raises(UnknownJob):
        app.job("never-enqueued").status()


def _skip(job: Job[Any]) -> None:
    if job.task == "skipped":
        raise SkipJob("not today")


def test_async_tasks_and_jobs_enqueued_by_tasks_run_inline(app: Resq) -> None:
    @app.task(name="double")
    async def double(x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    @app.task(name="fan_out")
    def fan_out(n: int) -> list[int]:
        return [double.delay(i).result() for i in range(n)]

    assert fan_out.delay(3).result() == [0, 2, 4]

    async def from_a_running_loop() -> int:  # an async test or view calling .delay()
        return double.delay(21).result()

    assert asyncio.run(from_a_running_loop()) == 42


def test_the_eager_context_manager_and_the_setting(free_port: int) -> None:
    # Given an app that is not eager, pointing at a closed port
    app = Resq(f"redis://127.0.0.1:{free_port}/0", broker_retry_s=0.2, connect_timeout=0.1)
    add = app.task(name="add")(lambda a, b: a + b)
    # Within resq.testing.eager(app), jobs run inline and their records stay in the runner
    with eager(app) as runner:
        job = add.delay(2, 3)
        assert job.result() == 5
        assert len(runner.jobs) == 1
    assert app.inline is None and app._broker is None
    # The setting does the same, and reconfigure turns it on and off
    app.reconfigure(eager=True)
    assert add.delay(1, 1).result() == 2
    app.reconfigure(eager=False)
    assert app.inline is None
    with pytest.raises(ConfigError, match="setting eager must be True or False"):
        Resq(eager="yes")
