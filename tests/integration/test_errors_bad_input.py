"""Bad input and an unreachable Redis: clear errors, raised early, with nothing half-written."""

from __future__ import annotations

import socket
import time

import pytest
import redis

from resq import BrokerUnavailable, ConfigError, EncodeError, JobFailed, PayloadTooLarge, Resq, ResqError
from resq.broker.keys import Keys
from tests.redis_server import RedisServer, find_free_port

K = Keys("resq")


def closed_port() -> int:
    """A port nothing listens on (bound once to pick it, then released)."""
    port = find_free_port()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    return port


def test_nothing_connects_until_delay_which_raises_broker_unavailable() -> None:
    app = Resq(f"redis://127.0.0.1:{closed_port()}/0", broker_retry_s=0.3, connect_timeout=0.2)

    @app.task(retries=3, queue="mail")
    def send(to: str) -> str:
        return to

    assert send("here") == "here"  # a direct call never needs Redis
    handle = app.job("some-id")
    assert handle.id == "some-id"

    began = time.monotonic()
    with pytest.raises(BrokerUnavailable) as info:
        send.delay("a@b.c")
    assert time.monotonic() - began < 10  # bounded: broker_retry_s, not forever
    assert isinstance(info.value, ResqError)
    assert "unavailable" in str(info.value)
    with pytest.raises(BrokerUnavailable):
        handle.status()


def test_broker_unavailable_hides_the_password() -> None:
    app = Resq(f"redis://user:s3cret@127.0.0.1:{closed_port()}/0", broker_retry_s=0.1, connect_timeout=0.2)
    task = app.task(name="t")(lambda: None)
    with pytest.raises(BrokerUnavailable) as info:
        task.delay()
    assert "s3cret" not in str(info.value)


def test_redis_going_away_and_coming_back(private_redis: RedisServer) -> None:
    app = Resq(private_redis.url(), broker_retry_s=0.3, connect_timeout=0.2, socket_timeout=0.5)
    task = app.task(name="t")(lambda: None)
    assert task.delay().status() == "queued"
    private_redis.kill()
    with pytest.raises(BrokerUnavailable):
        task.delay()
    private_redis.restart()
    assert task.delay().status() == "queued"


def test_delay_retries_through_a_short_outage(private_redis: RedisServer) -> None:
    """With a generous broker_retry_s a producer rides out a Redis that is back within it."""
    import threading

    app = Resq(private_redis.url(), broker_retry_s=15, connect_timeout=0.2, socket_timeout=0.5)
    task = app.task(name="t")(lambda: None)
    assert task.delay().status() == "queued"
    private_redis.kill()
    restarter = threading.Timer(0.5, private_redis.restart)
    restarter.start()
    try:
        job = task.delay()
    finally:
        restarter.join()
    assert job.status() == "queued"


def test_unknown_setting_is_a_config_error_with_a_hint() -> None:
    with pytest.raises(ConfigError, match="did you mean 'max_payload_bytes'"):
        Resq("redis://127.0.0.1:1/0", max_payload_byte=10)


def test_unknown_task_option_fails_at_decoration() -> None:
    app = Resq("redis://127.0.0.1:1/0")
    with pytest.raises(ConfigError, match="did you mean 'retry_on'"):

        @app.task(retry_onn=(ValueError,))
        def f() -> None: ...


def test_bad_queue_names_everywhere(redis_url: str, redis_client: redis.Redis) -> None:
    app = Resq(redis_url)
    with pytest.raises(ConfigError, match="invalid queue name"):
        app.task(queue="mail:urgent")
    task = app.task(name="ok")(lambda: None)
    with pytest.raises(ConfigError, match="invalid queue name"):
        task.apply_async(queue="{mail}")
    assert redis_client.dbsize() == 0


def test_encode_error_is_both_resq_error_and_type_error(redis_url: str, redis_client: redis.Redis) -> None:
    app = Resq(redis_url)
    task = app.task(name="t")(lambda *a, **k: None)
    for call in (
        lambda: task.delay(object()),
        lambda: task.enqueue_in(5, {1}),
        lambda: task.apply_async(kwargs={"k": socket.socket}),
    ):
        with pytest.raises(EncodeError) as info:
            call()
        assert isinstance(info.value, ResqError) and isinstance(info.value, TypeError)
    with pytest.raises(TypeError):  # callers that know nothing of resq still catch it
        task.delay(object())
    assert redis_client.dbsize() == 0


def test_payload_too_large_enqueues_nothing_for_scheduled_jobs_either(
    redis_url: str, redis_client: redis.Redis
) -> None:
    app = Resq(redis_url, max_payload_bytes=64)
    task = app.task(name="t")(lambda data: None)
    with pytest.raises(PayloadTooLarge):
        task.enqueue_in(10, "x" * 100)
    with pytest.raises(PayloadTooLarge):
        task.apply_async(args=(b"y" * 100,), job_id="fixed")
    assert redis_client.dbsize() == 0


def test_job_failed_is_a_resq_error() -> None:
    err = JobFailed("id1", "ValueError", "bad", "Traceback ...")
    assert isinstance(err, ResqError)
    assert (err.job_id, err.exc_type, err.exc_message, err.traceback) == ("id1", "ValueError", "bad", "Traceback ...")
    assert (err.type, err.message) == ("ValueError", "bad")
    assert "ValueError: bad" in str(err)


def _drain_bad(app: Resq) -> None:
    from resq.testing import drain

    drain(app, ["default"])


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({b"id": b"\xff\xfe not utf-8"}, "not a resq queue entry"),
        ({b"id": b"x" * 2_000}, "not a resq queue entry"),  # an id over 1,024 bytes
        ({b"id": b"ok", b"extra": b"1"}, "not a resq queue entry"),
    ],
)
def test_a_foreign_queue_entry_goes_dead_with_its_raw_fields(
    redis_url: str, redis_client: redis.Redis, fields: dict[bytes, bytes], reason: str
) -> None:
    app = Resq(redis_url)
    app.broker.queues.ensure_groups(["default"])
    entry = redis_client.xadd(K.queue("default"), fields)  # type: ignore[arg-type]
    _drain_bad(app)
    job_id = "garbage-" + entry.decode()
    assert redis_client.zscore(K.dead("default"), job_id) is not None  # set aside, not silently dropped
    record = redis_client.hgetall(K.job("default", job_id))
    assert reason in record[b"error"].decode("utf-8", "replace") and record[b"envelope"]
    assert redis_client.xlen(K.queue("default")) == 0


def test_an_entry_whose_job_record_was_deleted_goes_dead_and_can_be_retried(
    redis_url: str, redis_client: redis.Redis
) -> None:
    app = Resq(redis_url)
    seen: list[int] = []
    task = app.task(name="bad.note")(lambda x: seen.append(x))
    app.broker.queues.ensure_groups(["default"])
    job = task.delay(7)
    redis_client.delete(K.job("default", job.id))  # something deleted the record under the waiting entry
    _drain_bad(app)
    assert seen == [] and job.status() == "dead"
    assert "no job record" in job.info()["error"]["message"]
    assert app.broker.jobs.revive("default", [job.id]) == [job.id]  # its envelope was kept: it can run again
    _drain_bad(app)
    assert seen == [7]


def test_an_envelope_over_the_limit_written_straight_into_redis_goes_dead(
    redis_url: str, redis_client: redis.Redis
) -> None:
    app = Resq(redis_url, max_payload_bytes=1_000)
    ran: list[object] = []
    app.task(name="bad.big")(lambda *a: ran.append(a))
    app.broker.queues.ensure_groups(["default"])
    job = app.tasks["bad.big"].delay("small")
    entry = redis_client.hget(K.job("default", job.id), "entry")
    big = b"\x00" * 5_000  # bypasses the producer's check
    redis_client.xdel(K.queue("default"), entry)  # type: ignore[arg-type]
    new = redis_client.xadd(K.queue("default"), {b"id": job.id.encode(), b"envelope": big})
    redis_client.hset(K.job("default", job.id), "entry", new)
    _drain_bad(app)
    assert ran == [] and job.status() == "dead"
    assert "over max_payload_bytes" in job.info()["error"]["message"]


def test_a_delay_whose_reply_was_lost_is_retried_with_the_same_id_and_enqueues_once(
    redis_server: RedisServer, redis_url: str, redis_client: redis.Redis
) -> None:
    """Redis ran the enqueue but its answer was lost with the connection: ``.delay()`` reconnects and sends
    the same job (same id) again, which finds it already queued: one job, not two (issue 11 item 8)."""
    from tests.proxy import Proxy

    proxy = Proxy(redis_server.port)
    db = int(redis_url.rsplit("/", 1)[1])
    app = Resq(proxy.url(db), broker_retry_s=3)
    task = app.task(name="bad.once")(lambda: None)
    try:
        task.delay()  # connects, loads the scripts, announces the queue
        proxy.lose_next_reply()
        job = task.delay()
        assert proxy.lost == 1  # the first try ran in Redis and its answer never came
        assert job.status() == "queued"
        entries = redis_client.xrange(K.queue("default"))
        assert [e[1][b"id"] for e in entries].count(job.id.encode()) == 1
        assert redis_client.xlen(K.queue("default")) == 2
    finally:
        app.broker.close()
        proxy.close()
