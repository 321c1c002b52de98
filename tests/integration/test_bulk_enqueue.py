"""Bulk enqueue: ``task.map`` and ``app.enqueue_many``, chunked, against a real Redis."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from resq import ArgumentsError, ConfigError, Resq
from resq.broker.keys import Keys
from resq.testing import drain

K = Keys("resq")


@pytest.fixture
def app(redis_url: str) -> Iterator[Resq]:
    app = Resq(redis_url)

    @app.task(name="bulk.add")
    def add(x: int, y: int = 0) -> int:
        return x + y

    @app.task(name="bulk.shout", queue="loud")
    def shout(word: str) -> str:
        return word.upper()

    yield app
    app.broker.close()


def test_map_enqueues_one_job_per_item_in_chunks_and_in_order(app: Resq, redis_client: redis.Redis) -> None:
    add = app.tasks["bulk.add"]
    jobs = add.map([(i, 1) for i in range(1_203)])  # three chunks of at most 500
    assert len(jobs) == 1_203 and len({j.id for j in jobs}) == 1_203
    assert redis_client.xlen(K.queue("default")) == 1_203
    singles = add.map(range(3))  # a non-tuple item is the single argument
    assert drain(app, ["default"]) == 1_206
    assert [j.result(timeout=1) for j in jobs[:3]] == [1, 2, 3]
    assert [j.result(timeout=1) for j in singles] == [0, 1, 2]


@pytest.mark.cluster
def test_enqueue_many_takes_tasks_and_names_with_their_queues(app: Resq, redis_client: redis.Redis) -> None:
    add, shout = app.tasks["bulk.add"], app.tasks["bulk.shout"]
    jobs = app.enqueue_many([(add, (1,), {"y": 2}), ("bulk.shout", ("hi",)), (shout, ("yo",)), ("elsewhere.task", ())])
    assert [j.queue for j in jobs] == ["default", "loud", "loud", "default"]
    assert redis_client.xlen(K.queue("loud")) == 2
    drain(app, ["default", "loud"])
    assert jobs[0].result(timeout=1) == 3 and jobs[1].result(timeout=1) == "HI"
    assert jobs[3].status() == "dead"  # an unregistered name is sent as is: the worker decides
    moved = app.enqueue_many([(add, (5,))], queue="other")
    assert moved[0].queue == "other" and redis_client.xlen(K.queue("other")) == 1


def test_bad_calls_are_refused_before_their_chunk_is_sent(app: Resq, redis_client: redis.Redis) -> None:
    add = app.tasks["bulk.add"]
    with pytest.raises(ConfigError, match=r"\(task, args\)"):
        app.enqueue_many([add])  # type: ignore[list-item]
    with pytest.raises(ArgumentsError, match="nothing was enqueued for it"):
        add.map([(1,), (1, 2, 3)])
    with pytest.raises(ArgumentsError):
        app.enqueue_many([(add, (), {"nope": 1})])
    assert redis_client.xlen(K.queue("default")) == 0  # each failed in its first (only) chunk


def test_bulk_jobs_run_the_enqueue_hooks_once_each(app: Resq) -> None:
    seen: list[tuple[str, str]] = []
    app.on("before_enqueue")(lambda job: seen.append(("before", job.id)))
    app.on("after_enqueue")(lambda job: seen.append(("after", job.id)))
    jobs = app.tasks["bulk.add"].map([(1,), (2,)])
    ids: list[Any] = [j.id for j in jobs]
    assert sorted(seen) == sorted([("before", i) for i in ids] + [("after", i) for i in ids])


def test_a_bad_item_in_a_later_chunk_leaves_the_chunks_before_it_enqueued(app: Resq, redis_client: redis.Redis) -> None:
    """Chunks are sent while the next is encoded: a bad item ends the bulk enqueue once the chunks before
    its own are answered (enqueued, with their after_enqueue hooks run), and nothing of its chunk is sent."""
    after: list[str] = []
    app.on("after_enqueue")(lambda job: after.append(job.id))
    items: list[tuple[int, ...]] = [(i,) for i in range(1_100)]
    items[1_050] = (1, 2, 3)  # in the third chunk
    with pytest.raises(ArgumentsError, match="nothing was enqueued for it"):
        app.tasks["bulk.add"].map(items)
    assert redis_client.xlen(K.queue("default")) == 1_000 == len(after) == len(set(after))


@pytest.mark.cluster
def test_chunks_of_several_queues_keep_the_callers_order(app: Resq, redis_client: redis.Redis) -> None:
    add, shout = app.tasks["bulk.add"], app.tasks["bulk.shout"]
    calls = [(add, (i,)) if i % 3 else (shout, (str(i),)) for i in range(1_200)]
    jobs = app.enqueue_many(calls)  # type: ignore[arg-type]
    assert [j.queue for j in jobs] == ["default" if i % 3 else "loud" for i in range(1_200)]
    assert redis_client.xlen(K.queue("loud")) == 400 and redis_client.xlen(K.queue("default")) == 800


def test_a_bulk_enqueue_reloads_scripts_redis_lost(app: Resq, redis_client: redis.Redis) -> None:
    app.tasks["bulk.add"].map(range(2))  # loads the scripts
    redis_client.script_flush()
    jobs = app.tasks["bulk.add"].map(range(1_200))
    assert len(jobs) == 1_200 and redis_client.xlen(K.queue("default")) == 1_202
