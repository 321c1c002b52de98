"""Producing jobs against a real Redis, with no worker: what ``.delay()`` and friends write."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from types import ModuleType

import pytest
import redis

from resq import (
    ArgumentsError,
    ConfigError,
    EncodeError,
    JobStatus,
    PayloadTooLarge,
    Resq,
    ResqError,
    ResultTimeout,
    UnknownJob,
)
from resq.broker.keys import Keys
from resq.codec import decode_envelope
from tests.helpers import stored_envelope

K = Keys("resq")
#: every test here runs on one redis-server and on a Redis Cluster (docs/testing.md)
pytestmark = pytest.mark.cluster


def job_keys(client: redis.Redis) -> list[bytes]:
    return sorted(k for k in client.keys("*") if b":job:" in k)


def test_delay_stores_a_queued_job(core: ModuleType, redis_client: redis.Redis) -> None:
    job = core.add.delay(2, 3)
    assert job.status() == JobStatus.QUEUED == "queued"
    fields = redis_client.hgetall(K.job("default", job.id))
    assert fields[b"status"] == b"queued"
    assert fields[b"task"] == b"tests.apps.core.add"
    assert b"envelope" not in fields  # it waits in the stream entry: the hash stays small (listpack)
    assert redis_client.object("encoding", K.job("default", job.id)) == b"listpack"
    entries = redis_client.xrange(K.queue("default"))
    assert [sorted(e[1]) for e in entries] == [[b"envelope", b"id"]] and entries[0][1][b"id"] == job.id.encode()
    envelope = decode_envelope(entries[0][1][b"envelope"])
    assert (envelope.id, envelope.task, envelope.queue, envelope.args, envelope.kwargs) == (
        job.id,
        "tests.apps.core.add",
        "default",
        [2, 3],
        {},
    )
    assert job.info()["args"] == [2, 3]  # read from the entry while the job waits
    assert redis_client.sismember(K.queues, "default")


def test_job_ids_are_unique_and_time_sortable(core: ModuleType) -> None:
    ids = [core.add.delay(i, i).id for i in range(20)]
    assert len(set(ids)) == 20
    assert [i[:12] for i in ids] == sorted(i[:12] for i in ids)  # sortable to the millisecond
    assert all(abs(int(i[:12], 16) - time.time() * 1000) < 60_000 for i in ids)


def test_kwargs_and_rich_arguments_are_stored(core: ModuleType, redis_client: redis.Redis) -> None:
    when = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    job = core.echo.delay((1, 2), when=when, blob=b"\x00")
    envelope = decode_envelope(stored_envelope(redis_client, "default", job.id))
    assert envelope.args == [[1, 2]]
    assert envelope.kwargs == {"when": when, "blob": b"\x00"}


@pytest.mark.parametrize(
    "bad",
    [object(), {1, 2}, datetime(2024, 1, 1), {(1, 2): "tuple key"}, 2**64],
    ids=["object", "set", "naive-datetime", "tuple-key", "int-too-big"],
)
def test_unencodable_argument_raises_encode_error_and_enqueues_nothing(
    core: ModuleType, redis_client: redis.Redis, bad: object
) -> None:
    with pytest.raises(EncodeError) as info:
        core.echo.delay(1, bad)
    assert isinstance(info.value, ResqError)
    assert isinstance(info.value, TypeError)
    with pytest.raises(TypeError):
        core.echo.delay(x=bad)
    assert redis_client.dbsize() == 0


def test_arguments_that_do_not_match_the_signature_fail_at_enqueue(core: ModuleType, redis_client: redis.Redis) -> None:
    # add(a, b) given one argument, three, or an unknown keyword, by each way of enqueueing
    calls = [
        lambda: core.add.delay(1),
        lambda: core.add.apply_async(args=(1, 2, 3)),
        lambda: core.add.apply_async(args=(1,), kwargs={"c": 2}, queue="urgent"),
        lambda: core.add.enqueue_in(30, 1),
        lambda: core.add.enqueue_at(datetime.now(UTC) + timedelta(minutes=1), b=2),
    ]
    for call in calls:
        with pytest.raises(ArgumentsError) as info:
            call()
        assert isinstance(info.value, ResqError) and isinstance(info.value, TypeError)
        assert str(info.value).startswith("arguments do not match the signature of tests.apps.core.add(a, b): ")
        assert str(info.value).endswith(" (nothing was enqueued)")
    with pytest.raises(ArgumentsError, match=r"add\(a, b\): missing a required argument: 'b' \(nothing was"):
        core.add.delay(1)
    # Nothing reached Redis; a call that fits still goes through (and *args/**kwargs take anything)
    assert redis_client.dbsize() == 0
    assert core.add.delay(1, b=2).status() == "queued"
    assert core.echo.delay(1, 2, x=3).status() == "queued"


def test_payload_too_large_enqueues_nothing(redis_url: str, redis_client: redis.Redis) -> None:
    app = Resq(redis_url, max_payload_bytes=200)

    @app.task(name="big")
    def big(data: str) -> None: ...

    with pytest.raises(PayloadTooLarge) as info:
        big.delay("x" * 300)
    assert isinstance(info.value, ResqError)
    assert info.value.limit == 200
    assert info.value.size > 300
    assert redis_client.dbsize() == 0
    assert big.delay("small").status() == "queued"  # the limit is on size, not on the task


def test_apply_async_to_another_queue(core: ModuleType, redis_client: redis.Redis) -> None:
    job = core.add.apply_async(args=(1, 2), queue="urgent")
    assert job.queue == "urgent"
    assert redis_client.exists(K.job("urgent", job.id))
    assert not redis_client.exists(K.job("default", job.id))
    assert redis_client.xlen(K.queue("urgent")) == 1
    assert not redis_client.exists(K.queue("default"))
    info = core.app.job(job.id).info()
    assert info["queue"] == "urgent"
    assert info["args"] == [1, 2]


def test_apply_async_keeps_arguments_and_options_apart(core: ModuleType, redis_client: redis.Redis) -> None:
    job = core.echo.apply_async(args=[1], kwargs={"queue": "an argument", "delay": 5})
    envelope = decode_envelope(stored_envelope(redis_client, "default", job.id))
    assert envelope.queue == "default"
    assert envelope.kwargs == {"queue": "an argument", "delay": 5}
    assert job.status() == "queued"


def test_apply_async_bad_queue_name_enqueues_nothing(core: ModuleType, redis_client: redis.Redis) -> None:
    for bad in ("a:b", "{x}", "", "with space"):
        with pytest.raises(ConfigError, match="invalid queue name"):
            core.add.apply_async(args=(1, 2), queue=bad)
    assert redis_client.dbsize() == 0


def test_job_id_is_an_idempotency_key_while_live(core: ModuleType, redis_client: redis.Redis) -> None:
    first = core.add.apply_async(args=(1, 2), job_id="order-42")
    second = core.add.apply_async(args=(5, 5), job_id="order-42")
    assert first.id == second.id == "order-42"
    assert redis_client.xlen(K.queue("default")) == 1
    envelope = decode_envelope(stored_envelope(redis_client, "default", "order-42"))
    assert envelope.args == [1, 2]  # the first one stands
    assert len(job_keys(redis_client)) == 1


def test_job_id_idempotency_holds_for_scheduled_jobs(core: ModuleType, redis_client: redis.Redis) -> None:
    core.add.apply_async(args=(1, 2), job_id="later-1", delay=60)
    again = core.add.apply_async(args=(1, 2), job_id="later-1", delay=60)
    assert again.status() == "scheduled"
    assert redis_client.zcard(K.scheduled("default")) == 1
    assert not redis_client.exists(K.queue("default"))


def test_enqueue_in_is_scheduled(core: ModuleType, redis_client: redis.Redis) -> None:
    before = int(time.time() * 1000) / 1000
    job = core.add.enqueue_in(30, 1, 2)
    assert job.status() == JobStatus.SCHEDULED == "scheduled"
    due_ms = redis_client.zscore(K.scheduled("default"), job.id)
    assert due_ms is not None
    assert before + 30 <= due_ms / 1000 <= time.time() + 30 + 1
    assert not redis_client.exists(K.queue("default"))  # nothing queued yet
    job2 = core.add.enqueue_in(timedelta(minutes=2), 3, 4)
    assert redis_client.zscore(K.scheduled("default"), job2.id) >= (before + 120) * 1000


def test_enqueue_at_is_scheduled_at_that_instant(core: ModuleType, redis_client: redis.Redis) -> None:
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    job = core.add.enqueue_at(at, 1, 2)
    assert job.status() == "scheduled"
    assert redis_client.zscore(K.scheduled("default"), job.id) == at.timestamp() * 1000
    assert job.info()["due_at"] == at
    assert job.info()["result"] is None  # not succeeded (yet)


def test_enqueue_at_refuses_a_naive_datetime(core: ModuleType, redis_client: redis.Redis) -> None:
    with pytest.raises(ConfigError, match="timezone-aware"):
        core.add.enqueue_at(datetime.now() + timedelta(hours=1), 1, 2)
    with pytest.raises(ConfigError):
        core.add.apply_async(args=(1, 2), at=datetime(2030, 1, 1))
    assert redis_client.dbsize() == 0


def test_enqueue_at_in_the_past_is_queued_now(core: ModuleType, redis_client: redis.Redis) -> None:
    job = core.add.enqueue_at(datetime.now(UTC) - timedelta(minutes=1), 1, 2)
    assert job.status() == "queued"
    assert redis_client.xlen(K.queue("default")) == 1


def test_app_job_gives_a_handle_back(core: ModuleType) -> None:
    job = core.add.apply_async(args=(1, 2), queue="mail")
    handle = core.app.job(job.id)
    assert handle.id == job.id
    assert handle == job
    assert handle.status() == "queued"
    assert handle.queue == "mail"  # found through the known queues
    info = handle.info()
    assert info["task"] == "tests.apps.core.add"
    assert info["attempts"] == 0
    assert info["status"] == "queued"
    assert info["enqueued_at"].tzinfo is not None
    assert info["worker"] is None
    assert info["error"] is None


def test_unknown_job_id(core: ModuleType) -> None:
    core.add.delay(1, 1)  # so that a queue is known
    handle = core.app.job("no-such-job")
    with pytest.raises(UnknownJob):
        handle.status()
    with pytest.raises(UnknownJob):
        handle.info()
    with pytest.raises(UnknownJob):
        handle.result(timeout=0.1)


def test_result_times_out_without_a_worker(core: ModuleType) -> None:
    job = core.add.delay(1, 2)
    with pytest.raises(ResultTimeout):
        job.result(timeout=0.3)
    assert job.status() == "queued"


def test_result_timeout_of_a_scheduled_job(core: ModuleType) -> None:
    job = core.add.enqueue_in(60, 1, 2)
    with pytest.raises(ResultTimeout, match="scheduled"):
        job.result(timeout=0.2)


def test_enqueue_in_zero_is_queued_now(core: ModuleType, redis_client: redis.Redis) -> None:
    job = core.add.enqueue_in(0, 1, 2)
    assert job.status() == "queued"
    assert redis_client.zcard(K.scheduled("default")) == 0


def test_the_library_does_not_configure_logging(core: ModuleType) -> None:
    import logging

    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    core.add.delay(1, 2).status()
    assert (list(root.handlers), root.level) == before
