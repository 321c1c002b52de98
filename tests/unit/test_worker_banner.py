"""The banner ``resq worker`` prints as it starts, and the masking of passwords in urls (no Redis needed)."""

from __future__ import annotations

import pytest

from resq import Resq
from resq.broker.connection import mask_password
from resq.worker import WorkerConfig
from resq.worker.banner import banner


def test_the_banner_names_redis_namespace_queues_concurrency_and_tasks() -> None:
    app = Resq("redis://shop:s3cret@cache.internal:6380/3", namespace="shop")

    @app.task(name="shop.charge")
    def charge() -> None: ...

    @app.task(name="shop.email", queue="emails")
    def email() -> None: ...

    config = WorkerConfig(queues=["high", "default"], concurrency=4, threads=2, prefetch=5, scheduler=True)
    text = banner(app, config)
    assert "s3cret" not in text
    rows = {line.split(":", 1)[0].strip(" .>"): line.split(":", 1)[1].strip() for line in text.splitlines()[3:8]}
    assert rows == {
        "redis": "redis://shop:***@cache.internal:6380/3",
        "namespace": "shop",
        "queues": "high, default (in priority order)",
        "concurrency": "4 processes x 2 threads each, prefetch 5",
        "scheduler": "embedded (0 periodic entries in code)",
    }
    tasks = text.split("[tasks] (2)\n", 1)[1].splitlines()
    assert tasks == ["  . shop.charge", "  . shop.email  (queue 'emails': not served here)"]


def test_the_banner_names_the_resque_queues_and_each_tasks_resque_class() -> None:
    app = Resq("redis://localhost:6379/0")

    @app.task(name="mail.send", resque_class="Job\\Work\\TestJob")
    def send() -> None: ...

    config = WorkerConfig(queues=["mail"], resque_queues=["mail"], resque_namespace="resque:App")
    text = banner(app, config)
    assert "  .> resque:      mail (namespace resque:App, into resq's queues)\n" in text
    assert text.endswith("  . mail.send  (Resque class 'Job\\\\Work\\\\TestJob')")


def test_the_banner_of_an_app_without_tasks_says_so() -> None:
    text = banner(Resq("redis://localhost:6379/0"), WorkerConfig())
    assert "  .> queues:      default\n" in text and "1 process x 1 thread each, prefetch adaptive" in text
    assert "scheduler" not in text
    assert text.endswith("[tasks] (0)\n  (none)")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        ("redis://:pw@h:1/0", "redis://:***@h:1/0"),
        ("rediss://user:pw@h/2", "rediss://user:***@h/2"),
        ("redis://pw@h", "redis://***@h"),
        ("redis://h/0?password=pw&ssl_cert_reqs=none", "redis://h/0?password=***&ssl_cert_reqs=none"),
        ("unix:///tmp/redis.sock?db=1&password=pw", "unix:///tmp/redis.sock?db=1&password=***"),
    ],
)
def test_passwords_are_masked_in_urls(url: str, shown: str) -> None:
    assert mask_password(url) == shown
