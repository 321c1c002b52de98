"""A queue spread over shards (``@app.task(queue=..., shards=N)``, ``docs/scaling.md``): producers put jobs
on the shards round-robin or by ``shard_key``, a worker serving the queue reads every shard, each in turn
first. On one redis-server here; on a Redis Cluster in ``test_cluster.py``."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import redis

from resq import ConfigError, JobStatus, Resq
from resq.worker.consumer import Consumer

app = Resq()


@app.task(name="shard.work", queue="ingest", shards=4)
def work(n: int) -> int:
    return n


@app.task(name="shard.by_user", queue="feed", shards=8, shard_key=lambda user, **_: user)
def by_user(user: str, item: int) -> int:
    return item


@pytest.fixture
def client(bind_app: Any) -> redis.Redis:
    return bind_app(app, tuple(app.served(["ingest", "feed"])))  # type: ignore[no-any-return]


@pytest.mark.cluster
def test_jobs_go_round_robin_and_one_worker_takes_each_shard_in_turn(client: redis.Redis) -> None:
    jobs = [work.delay(n) for n in range(8)]
    assert Counter(job.queue for job in jobs) == dict.fromkeys(("ingest#0", "ingest#1", "ingest#2", "ingest#3"), 2)
    consumer = Consumer(app, "w1", ["ingest"], burst=True, prefetch=1)
    assert consumer.queues == ["ingest#0", "ingest#1", "ingest#2", "ingest#3"]
    for _ in range(4):
        consumer.step()
    done = [job for job in jobs if job.status() == JobStatus.SUCCEEDED]
    assert len({job.queue for job in done}) == len(done) == 4  # four fetches, one from each shard
    while not consumer.step().drained:
        pass
    assert sorted(job.result(timeout=5) for job in jobs) == list(range(8))


def test_a_shard_key_keeps_one_key_on_one_shard(client: redis.Redis) -> None:
    ann = {by_user.delay("ann", n).queue for n in range(5)}
    others = {by_user.delay(f"user{n}", n).queue for n in range(40)}
    assert len(ann) == 1 and ann < {f"feed#{n}" for n in range(8)}
    assert len(others) > 4  # other keys spread over the shards


def test_bad_shard_options_are_one_clear_line() -> None:
    other = Resq("redis://127.0.0.1:1/0")
    for options, match in (
        ({"shards": 0}, "shards must be an integer from 1 to 1024"),
        ({"shard_key": lambda x: x}, "shard_key needs shards=N"),
        ({"shards": 4, "concurrency": 2}, "a sharded task .* takes no concurrency"),
        ({"shards": 4, "unique": True}, "takes no unique"),
    ):
        with pytest.raises(ConfigError, match=match):
            other.task(name="t", **options)(lambda x: x)
    other.task(name="a", queue="q", shards=2)(lambda x: x)
    with pytest.raises(ConfigError, match="queue 'q' has 2 shard"):
        other.task(name="b", queue="q", shards=3)(lambda x: x)
