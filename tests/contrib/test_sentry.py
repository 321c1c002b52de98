"""Sentry reports the job that ends dead once, tagged with the job; its retried attempts are breadcrumbs,
not new issues. With sentry-sdk's own client and a transport that records what it would send."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from resq import Resq
from resq.contrib.sentry import instrument
from resq.worker.consumer import Consumer


class Recording(Transport):
    """A transport that keeps the events instead of sending them."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.events: list[dict[str, Any]] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        event = envelope.get_event()
        if event is not None:
            self.events.append(event)


@pytest.fixture
def sent() -> Iterator[Recording]:
    transport = Recording()
    sentry_sdk.init(dsn="https://key@sentry.invalid/1", transport=transport, default_integrations=False)
    yield transport
    sentry_sdk.get_client().close()
    sentry_sdk.init()  # a client that sends nothing, for the tests after this one


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
