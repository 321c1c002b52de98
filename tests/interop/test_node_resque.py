"""resq and the Resque family on one Redis, tested against the real thing: node-resque from npm (its
``Worker`` and ``Scheduler``; ``tests/interop/node``, installed by ``make test``'s ``npm ci``). resq
enqueues in the Resque format, node-resque's worker runs the jobs; resq delays a job, node-resque's
scheduler queues it on time (``docs/resque.md``)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis

from resq import ConfigError, Resq
from resq.resque import Resque
from tests.interop.node_resque import node_work, ran
from tests.redis_server import RedisServer


def test_a_job_resq_enqueues_is_run_by_a_node_resque_worker(private_redis: RedisServer) -> None:
    app = Resq(private_redis.url(0))
    client = redis.Redis(port=private_redis.port)
    php_args = [{"to": "a@b.c", "subject": "hi"}]  # php-resque's shape: one object in args
    job_id = app.resque.enqueue("Job\\Work\\TestJob", php_args, queue="mail", track=True)
    app.resque.enqueue("SendMail", ["a@b.c", 2], queue="default")
    payload = json.loads(client.lindex("resque:queue:mail", 0) or b"{}")
    assert list(payload)[:2] == ["class", "args"] and payload["id"] == job_id  # Ruby's dequeue matches the text
    assert json.loads(client.get(f"resque:job:{job_id}:status") or b"{}")["status"] == 1  # php-resque: waiting
    assert client.smembers("resque:queues") == {b"mail", b"default"}
    node_work(private_redis, "mail,default", "Job\\Work\\TestJob,SendMail", expect=2)
    assert sorted(ran(client), key=lambda r: str(r["class"])) == [
        {"class": "Job\\Work\\TestJob", "args": php_args},
        {"class": "SendMail", "args": ["a@b.c", 2]},
    ]
    app.broker.close()


def test_a_job_resq_delays_is_queued_on_time_by_node_resques_scheduler(private_redis: RedisServer) -> None:
    app = Resq(private_redis.url(0))
    client = redis.Redis(port=private_redis.port)
    resque = Resque(app, "resque:App")  # another namespace, as Ruby's Redis::Namespace names it
    due = time.time() + 2
    resque.enqueue_in(timedelta(seconds=2), "Reminder", ["ann"], queue="later")
    resque.enqueue_at(datetime.now(UTC) + timedelta(hours=1), "Reminder", ["bob"], queue="later")
    assert client.zcard("resque:App:delayed_queue_schedule") == 2
    node_work(private_redis, "later", "Reminder", expect=1, namespace="resque:App")
    assert time.time() >= int(due) - 0.05  # not run before its second (the scheduler keeps whole seconds)
    assert ran(client) == [{"class": "Reminder", "args": ["ann"]}]
    assert client.zcard("resque:App:delayed_queue_schedule") == 1  # bob's, an hour away, still waits
    app.broker.close()


def test_bad_resque_calls_are_one_clear_line_and_send_nothing(private_redis: RedisServer) -> None:
    app = Resq(private_redis.url(0))
    client = redis.Redis(port=private_redis.port)
    for call, match in (
        (lambda: app.resque.enqueue("", []), "class is its workers' class name"),
        (lambda: app.resque.enqueue("SendMail", {"to": "x"}), "args are a list"),
        (lambda: app.resque.enqueue("SendMail", [object()]), "must be JSON values"),
        (lambda: app.resque.enqueue("SendMail", [], queue="a:b"), "invalid queue name"),
        (lambda: app.resque.enqueue_at(datetime(2030, 1, 1), "SendMail"), "timezone-aware"),
        (lambda: Resque(app, ""), "invalid Resque namespace"),
    ):
        with pytest.raises(ConfigError, match=match):
            call()
    assert client.dbsize() == 0
    app.broker.close()
