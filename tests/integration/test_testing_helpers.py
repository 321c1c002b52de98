"""resq.testing.drain performs queued jobs in the test's own process."""

from __future__ import annotations

import pytest
import redis

from resq import JobFailed, Resq, current_job
from resq.testing import drain, eager


def test_drain_runs_queued_jobs_here_with_retries_and_results(redis_url: str) -> None:
    # Given an app with a task that fails once, and two jobs on two queues
    app = Resq(redis_url)
    seen: list[tuple[int, int]] = []

    @app.task(name="flaky", retries=1, backoff=0.05, queue="mail")
    def flaky(n: int) -> int:
        job = current_job()
        assert job is not None
        seen.append((n, job.attempt))
        if job.attempt == 1:
            raise ValueError("first attempt fails")
        return n * 2

    @app.task(name="boom")
    def boom() -> None:
        raise RuntimeError("always")

    ok, bad = flaky.delay(21), boom.delay()
    # When the test drains the queues
    performed = drain(app)
    # Then every attempt ran in this process, and the outcomes are recorded as a worker would
    assert performed == 3
    assert seen == [(21, 1), (21, 2)]
    assert ok.result(timeout=1) == 42
    with pytest.raises(JobFailed, match="always"):
        bad.result(timeout=1)
    assert app.broker.workers.live() == set()


def test_eager_block_leaves_redis_alone_and_the_app_goes_back_to_it(redis_url: str, redis_client: redis.Redis) -> None:
    # Given an app on a real Redis
    app = Resq(redis_url)
    double = app.task(name="double")(lambda x: x * 2)
    # Within resq.testing.eager(app), jobs run inline and nothing is written to Redis
    with eager(app):
        assert double.delay(21).result() == 42
    assert redis_client.dbsize() == 0
    # After the block, jobs go to Redis again, and drain (which does want Redis) performs them
    job = double.delay(4)
    assert job.status() == "queued"
    assert drain(app) == 1
    assert job.result(timeout=1) == 8
