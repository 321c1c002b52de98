"""Where a job's envelope lives: in its stream entry while it waits (the hash stays small enough for
Redis's compact encoding), in its hash once the entry is gone, and never lost on the way."""

from __future__ import annotations

import pytest
import redis

from resq import Resq
from resq.broker.keys import Keys
from resq.codec import pack
from resq.outcomes import Delivery, Retried, Succeeded
from resq.worker.consumer import Consumer

K = Keys("resq")


@pytest.fixture
def app(adder: Resq) -> Resq:
    return adder


def _hash(client: redis.Redis, job_id: str) -> dict[bytes, bytes]:
    return client.hgetall(K.job("default", job_id))


def _lease(app: Resq) -> Delivery:
    [delivery] = app.broker.queues.fetch("home-consumer", ["default"], 1, None)
    return delivery


def test_a_waiting_job_keeps_its_envelope_in_its_entry_and_a_finished_one_in_its_hash(
    app: Resq, redis_client: redis.Redis
) -> None:
    job = app.tasks["add"].delay(2, 3)
    assert b"envelope" not in _hash(redis_client, job.id)
    assert redis_client.object("encoding", K.job("default", job.id)) == b"listpack"
    assert job.info()["args"] == [2, 3]
    Consumer(app, "home-consumer", ["default"], burst=True).run()
    assert job.result(timeout=1) == 5
    assert b"envelope" in _hash(redis_client, job.id) and job.info()["args"] == [2, 3]


def test_a_retried_job_carries_its_envelope_in_its_hash_and_runs_again(app: Resq, redis_client: redis.Redis) -> None:
    job = app.tasks["add"].delay(1, 1)
    delivery = _lease(app)
    started = app.broker.queues.start("home-consumer", delivery)
    assert started.envelope == delivery.fields[b"envelope"]  # from the entry: the hash has none
    app.broker.queues.record([Retried(delivery, job.id, pack({"type": "E"}), 0, 1)])
    assert job.status() == "retrying" and b"envelope" in _hash(redis_client, job.id)
    assert app.broker.queues.promote("default")[0] == 1
    again = _lease(app)
    assert again.fields.keys() == {b"id"}  # promoted: the envelope stays in the hash
    assert app.broker.queues.start("home-consumer", again).envelope == delivery.fields[b"envelope"]


def test_a_job_handed_back_waits_again_with_its_envelope_in_its_new_entry(app: Resq, redis_client: redis.Redis) -> None:
    job = app.tasks["add"].delay(4, 4)
    delivery = _lease(app)
    app.broker.queues.start("home-consumer", delivery)
    assert app.broker.queues.release(delivery, "returned") == "queued"
    again = _lease(app)
    assert again.entry != delivery.entry and again.fields[b"envelope"] == delivery.fields[b"envelope"]
    assert b"envelope" not in _hash(redis_client, job.id)


def test_an_outcome_recorded_without_the_entry_fields_copies_the_envelope_from_the_entry(
    app: Resq, redis_client: redis.Redis
) -> None:
    """The supervisor knows a running job by queue, entry and id only (its board): the script reads the
    envelope from the entry before taking it out of the stream."""
    job = app.tasks["add"].delay(5, 6)
    delivery = _lease(app)
    app.broker.queues.start("home-consumer", delivery)
    bare = Delivery(delivery.queue, delivery.entry, delivery.job_id, {})
    app.broker.queues.record([Succeeded(bare, job.id, pack(11), 60_000, 1)])
    assert _hash(redis_client, job.id)[b"envelope"] == delivery.fields[b"envelope"]
    assert job.info()["args"] == [5, 6]


def test_a_job_cancelled_while_it_waits_keeps_its_arguments(app: Resq, redis_client: redis.Redis) -> None:
    job = app.tasks["add"].delay(7, 8)
    assert job.cancel() == "cancelled"
    assert redis_client.xlen(K.queue("default")) == 0
    assert job.info()["args"] == [7, 8]
