"""Redis that comes back with an older state (restarted from a snapshot older than the workers' latest
writes): a job it shows leased to a live worker that no longer runs it is run again, not left ``running``
for ever; and a delivery that is not its job's current entry any more does not run (issue 11)."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from resq import Resq
from resq.broker.keys import Keys
from tests.conftest import RunWorker
from tests.helpers import read_log, wait_for
from tests.redis_server import RedisServer

APP = "tests.apps.runtime:app"
K = Keys("resq")


@pytest.fixture
def runtime(private_redis: RedisServer) -> Any:
    from tests.apps import runtime

    runtime.app.reconfigure(url=private_redis.url(0))
    yield runtime
    runtime.app.broker.close()


def _starts(client: redis.Redis, job_number: int) -> int:
    """How many runs of ``work(job_number)`` began, as the (restored) Redis holds them."""
    return sum(1 for i in client.lrange("runtime:started", 0, -1) if int(i) == job_number)


# single-only: it restores a redis-server of its own from a snapshot (private_redis)
def test_a_job_leased_before_the_snapshot_and_finished_after_it_runs_again(
    runtime: Any, private_redis: RedisServer, run_worker: RunWorker
) -> None:
    client = redis.Redis.from_url(private_redis.url(0))
    worker = run_worker(APP, "-c", "1", "--heartbeat-interval", "0.3", url=private_redis.url(0))
    job = runtime.work.delay(7, 1.0)
    wait_for(lambda: job.status() == "running", message="job running")
    # Given a snapshot taken while the job runs, then the job succeeds
    client.save()
    assert job.result(timeout=10) == 7
    # When Redis dies and comes back from that snapshot, the workers still running
    private_redis.kill()
    private_redis.restart()
    assert job.status() == "running"  # what the snapshot holds: leased to a worker that finished it
    # Then the worker notices that Redis lost its writes and gives the lease back: the job runs again
    wait_for(lambda: _starts(client, 7) == 2 and job.status() == "succeeded", timeout=15, message="job run again")
    assert "redis_lost_writes" in read_log(worker)
    assert runtime.work.delay(8).result(timeout=10) == 8  # and the worker goes on serving
    client.close()


@pytest.mark.cluster
def test_a_delivery_that_is_not_its_jobs_current_entry_does_not_run(adder: Resq, redis_client: redis.Redis) -> None:
    # Given a job leased by one worker, then given back under a new entry while that lease was in hand
    job = adder.tasks["add"].delay(1, 2)
    queues = adder.broker.queues
    [first] = queues.fetch("w1", ["default"], 1, None)
    assert queues.release(first, "returned") == "queued"
    [second] = queues.fetch("w2", ["default"], 1, None)
    # When the first lease is started after all, then it does not run; the current one does
    stale = queues.start("w1", first)
    assert not stale.runnable and not stale.orphan
    current = queues.start("w2", second)
    assert current.runnable and current.attempt == 1
    assert job.status() == "running"
    assert redis_client.hget(K.job("default", job.id), "worker") == b"w2"
