"""Sentry reports the job that ends dead once, tagged with the job; its retried attempts are breadcrumbs,
not new issues. With sentry-sdk's own client and a transport that records what it would send."""

from __future__ import annotations

from resq import Resq
from resq.contrib.sentry import instrument
from resq.worker.consumer import Consumer
from tests.contrib.conftest import Recording


def test_only_the_dead_job_is_reported_with_its_tags(redis_url: str, sent: Recording) -> None:
    app = Resq(redis_url)

    @app.task(name="charge", retries=2, backoff=0)
    def charge(order: int) -> None:
        raise ConnectionError(f"gateway refused order {order}")

    instrument(app)
    app.broker.queues.ensure_groups(["default"])
    job = charge.delay(1047)
    consumer = Consumer(app, "w1", ["default"], burst=True)
    while not consumer.step().drained:
        pass
    assert job.status() == "dead"
    [event] = sent.events  # three failed attempts, one report
    assert event["tags"] == {"resq.job_id": job.id, "resq.task": "charge", "resq.queue": "default", "resq.attempt": "3"}
    assert event["exception"]["values"][-1]["type"] == "ConnectionError"
    assert event["fingerprint"] == ["resq", "charge", "ConnectionError"]
    crumbs = [c["message"] for c in event["breadcrumbs"]["values"] if c.get("category") == "resq"]
    assert crumbs == [
        "charge attempt 1 failed: ConnectionError: gateway refused order 1047",
        "charge attempt 2 failed: ConnectionError: gateway refused order 1047",
    ]
    app.broker.close()


def test_a_job_that_succeeds_after_a_retry_is_not_reported(redis_url: str, sent: Recording) -> None:
    app = Resq(redis_url)
    tries: list[int] = []

    @app.task(name="flaky", retries=2, backoff=0)
    def flaky() -> str:
        tries.append(1)
        if len(tries) < 2:
            raise TimeoutError("slow gateway")
        return "ok"

    instrument(app)
    app.broker.queues.ensure_groups(["default"])
    job = flaky.delay()
    consumer = Consumer(app, "w1", ["default"], burst=True)
    while not consumer.step().drained:
        pass
    assert job.result(timeout=1) == "ok" and len(tries) == 2
    assert sent.events == []
    app.broker.close()


def test_a_report_carries_the_breadcrumbs_of_its_own_job_only(redis_url: str, sent: Recording) -> None:
    app = Resq(redis_url)
    tries: list[int] = []

    @app.task(name="flaky", retries=1, backoff=0)
    def flaky() -> None:
        tries.append(1)
        if len(tries) < 2:
            raise TimeoutError("slow gateway")

    @app.task(name="doomed")
    def doomed() -> None:
        raise KeyError("no such order")

    instrument(app)
    app.broker.queues.ensure_groups(["default"])
    flaky.delay()  # fails once in this process, then succeeds
    consumer = Consumer(app, "w1", ["default"], burst=True)
    while not consumer.step().drained:
        pass
    doomed.delay()
    while not consumer.step().drained:
        pass
    [event] = sent.events
    assert event["tags"]["resq.task"] == "doomed"
    assert [c for c in event["breadcrumbs"]["values"] if c.get("category") == "resq"] == []
    app.broker.close()
