"""resq workers taking the Resque family's jobs, tested against node-resque from npm: node-resque's
``Queue`` enqueues (in its own shape, and pushes Ruby's and the seed's PHP shape as those producers write
them), its ``Scheduler`` delays, and ``resq worker --resque-queues`` runs every job, loses none when it is
SIGKILLed mid-run, and leaves failures node-resque lists and retries; ``resq scheduler --resque`` moves
delayed jobs other producers pushed (``docs/resque.md``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import timedelta

import pytest
import redis

from resq import ConfigError, Resq
from resq.broker.keys import ResqueKeys
from resq.resque import ResqueDelayed
from resq.worker.resque import MOST_WAITING, ResqueQueues
from tests.conftest import RunResq, RunWorker
from tests.helpers import read_log, wait_for
from tests.interop.node_resque import node, node_enqueue, node_json, ran
from tests.redis_server import RedisServer

APP = "tests.apps.resqueapp:app"
#: The seed's PHP payload, verbatim in shape: a namespaced class, one object in args, php's md5 id.
PHP_JOB = (
    '{"class":"Job\\\\Work\\\\TestJob","args":[{"to":"a@b.c","subject":"hi"}],'
    '"id":"b1946ac92492d2347c6235b4d2611184","queue_time":1764806400.1234}'
)
RUBY_JOB = '{"class":"Archive","args":[44,"masterbrew"]}'


def resq_worker(run_worker: RunWorker, server: RedisServer, *args: str, app: str = APP) -> subprocess.Popen[bytes]:
    return run_worker(app, "--no-banner", "--heartbeat-interval", "0.3", *args, url=server.url(0))


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a worker and its children (the fixture starts each in its own process group)."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def classes(client: redis.Redis) -> list[str]:
    return sorted(str(r["class"]) for r in ran(client))


def test_jobs_node_resque_enqueues_in_each_familys_shape_run_on_a_resq_worker(
    private_redis: RedisServer, run_worker: RunWorker
) -> None:
    client = redis.Redis(port=private_redis.port)
    node_enqueue(
        private_redis,
        [
            {"queue": "mail", "raw": RUBY_JOB},
            {"queue": "mail", "raw": PHP_JOB},
            {"queue": "math", "class": "add", "args": [1, 2]},
            {"queue": "math", "class": "add", "args": [3, 4], "in_ms": 1500},
        ],
    )
    php_status = "resque:job:b1946ac92492d2347c6235b4d2611184:status"  # CakeResque::enqueue(..., true) wrote it
    client.set(php_status, '{"status":1,"updated":1764806400,"started":1764806400}')
    worker = resq_worker(run_worker, private_redis, "--resque-queues", "mail,math")
    wait_for(lambda: len(ran(client)) >= 3, message=f"the queued jobs ran:\n{read_log(worker)}")
    assert sorted(map(json.dumps, ran(client))) == sorted(
        json.dumps(r)
        for r in (
            {"class": "Archive", "args": [44, "masterbrew"]},
            {"class": "Job\\Work\\TestJob", "args": [{"to": "a@b.c", "subject": "hi"}]},
            {"class": "add", "args": [1, 2]},
        )
    )
    wait_for(lambda: json.loads(client.get(php_status) or b"{}").get("status") == 4)  # php-resque: complete
    assert 0 < client.ttl(php_status) <= 86_400 and not client.keys("resque:job:*:status")[1:]  # no other added
    workers = node_json(private_redis, "workers")  # node-resque sees the resq worker, with its queues
    assert list(workers.values()) == ["mail,math"] and str(worker.pid) in next(iter(workers))
    assert client.llen("resque:queue:mail") == client.llen("resque:queue:math") == 0
    assert client.zcard("resque:delayed_queue_schedule") == 1  # the delayed one waits for a scheduler
    node(private_redis, "schedule", "2.5")  # node-resque's Scheduler queues it when due; resq runs it
    wait_for(lambda: len(ran(client)) == 4, message=f"the delayed job ran:\n{read_log(worker)}")
    assert ran(client)[-1] == {"class": "add", "args": [3, 4]}
    assert client.get("resque:stat:processed") == b"4" and client.get("resque:stat:failed") is None
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=20) == 0
    assert node_json(private_redis, "workers") == {}  # gone from the Resque family's list on exit
    assert not client.keys("resque:worker:*") and not client.keys("resque:resq:in-flight*")


def test_a_resq_worker_killed_mid_run_loses_no_resque_job(private_redis: RedisServer, run_worker: RunWorker) -> None:
    client = redis.Redis(port=private_redis.port)
    node_enqueue(private_redis, [{"queue": "slow", "class": "Slow", "args": [n, 0.4]} for n in range(8)])
    first = resq_worker(run_worker, private_redis, "--resque-queues", "slow", "-c", "2")
    wait_for(lambda: len(ran(client)) >= 2, message=f"some jobs ran:\n{read_log(first)}")
    kill_group(first)  # mid-run: jobs leased, jobs waiting in resq's queue
    done = {r["args"][0] for r in ran(client)}
    assert len(done) < 8, "every job ran before the kill: nothing was tested"
    second = resq_worker(run_worker, private_redis, "--resque-queues", "slow", "-c", "2")
    wait_for(
        lambda: {r["args"][0] for r in ran(client)} == set(range(8)),
        timeout=30,
        message=f"every job ran after the kill:\n{read_log(second)}",
    )
    assert client.llen("resque:queue:slow") == 0
    assert client.llen("resque:failed") == 0  # the jobs killed mid-run ran again, none failed
    wait_for(lambda: node_json(private_redis, "workers") and len(node_json(private_redis, "workers")) == 1)
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=20) == 0


def test_jobs_a_dead_worker_held_in_flight_are_recovered(private_redis: RedisServer, run_worker: RunWorker) -> None:
    """The narrowest window: taken into a worker's in-flight hash, the worker died before it made resq jobs
    of them. Another worker finds the hash past its deadline and runs each job once."""
    app = Resq(private_redis.url(0))
    client = redis.Redis(port=private_redis.port)
    keys = ResqueKeys("resque")
    node_enqueue(private_redis, [{"queue": "mail", "raw": RUBY_JOB}, {"queue": "mail", "raw": PHP_JOB}])
    ghost = "gone-host:1:mail"
    app.broker.resque.register_worker(keys, ghost, "2026-01-01 00:00:00 +0000", "2026-01-01T00:00:00+00:00")
    taken = app.broker.resque.take(keys, ghost, ["mail"], 10, dead_at_ms=0)  # its deadline is past already
    assert [number for number, _, _ in taken] == [1, 2] and client.llen("resque:queue:mail") == 0
    assert client.hlen(keys.in_flight(ghost)) == 2
    worker = resq_worker(run_worker, private_redis, "--resque-queues", "mail")
    wait_for(lambda: len(ran(client)) == 2, message=f"the jobs in flight ran:\n{read_log(worker)}")
    assert classes(client) == ["Archive", "Job\\Work\\TestJob"]
    assert not client.exists(keys.in_flight(ghost)) and ghost.encode() not in client.smembers("resque:workers")
    assert "resque_jobs_recovered" in read_log(worker)
    time.sleep(0.5)
    assert len(ran(client)) == 2  # once each
    app.broker.close()


def test_resq_failures_are_listed_and_retried_by_node_resque(private_redis: RedisServer, run_worker: RunWorker) -> None:
    client = redis.Redis(port=private_redis.port)
    node_enqueue(
        private_redis,
        [
            {"queue": "mail", "class": "Boom", "args": ["no route"]},
            {"queue": "mail", "class": "Nobody\\Knows", "args": [1]},
            {"queue": "mail", "class": "Crash", "args": []},
        ],
    )
    worker = resq_worker(run_worker, private_redis, "--resque-queues", "mail", app="tests.apps.resqueapp:strict")
    wait_for(lambda: client.llen("resque:failed") == 3, message=f"three failure records:\n{read_log(worker)}")
    records = {r["payload"]["class"]: r for r in node_json(private_redis, "failed")}
    boom, unknown = records["Boom"], records["Nobody\\Knows"]
    assert records["Crash"]["exception"] == "WorkerLost"  # recorded by the supervisor, its child gone
    assert (boom["exception"], boom["error"], boom["queue"]) == ("ValueError", "no route", "mail")
    assert any("resqueapp.py" in line for line in boom["backtrace"]) and boom["worker"].endswith(":mail")
    assert unknown["exception"] == "UnknownClass" and "resque_class='Nobody\\\\Knows'" in unknown["error"]
    assert client.get("resque:stat:failed") == b"3" and client.get("resque:stat:processed") == b"3"
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=20) == 0
    node_json(private_redis, "failed", "retry")  # node-resque finds each record by its exact text
    assert client.llen("resque:failed") == 0
    requeued = [json.loads(raw) for raw in client.lrange("resque:queue:mail", 0, -1)]
    assert sorted(j["class"] for j in requeued) == ["Boom", "Crash", "Nobody\\Knows"]


def test_resq_scheduler_moves_delayed_jobs_other_producers_pushed(
    private_redis: RedisServer, run_resq: RunResq
) -> None:
    app = Resq(private_redis.url(0))
    client = redis.Redis(port=private_redis.port)
    node_enqueue(private_redis, [{"queue": "mail", "class": "add", "args": [1, 2], "in_ms": 1000}])
    app.resque.enqueue_in(timedelta(seconds=1), "Archive", [44, "masterbrew"], queue="mail")
    app.resque.enqueue_in(timedelta(hours=1), "Archive", [45, "later"], queue="mail")
    # CakeResque::enqueueIn(1, 'mail', 'FriendShell', ['findNewFriends', 'John'], true), as
    # php-resque-ex-scheduler stores it: its own keys, the id and s_time added to the args
    due = int(time.time()) + 1
    php_args = {"0": "findNewFriends", "1": "John", "id": "4f1c0a8e9b7d6c5e4f3a2b1c0d9e8f7a", "s_time": due - 1}
    client.rpush(
        f"resque:_schdlr_:{due}",
        json.dumps({"class": "FriendShell", "args": [php_args], "queue": "mail", "track": True}),
    )
    client.zadd("resque:_schdlr_", {str(due): due})
    status = f"resque:job:{php_args['id']}:status"
    client.set(status, json.dumps({"status": 63, "updated": due - 1, "started": due - 1}))
    scheduler = run_resq("scheduler", "--resque", app_ref=APP, url=private_redis.url(0))
    wait_for(lambda: client.llen("resque:queue:mail") == 3, message=f"moved when due:\n{read_log(scheduler)}")
    moved = {json.loads(raw)["class"]: json.loads(raw) for raw in client.lrange("resque:queue:mail", 0, -1)}
    assert sorted(moved) == ["Archive", "FriendShell", "add"]
    assert moved["FriendShell"] == {"class": "FriendShell", "args": [php_args], "id": php_args["id"]}
    assert json.loads(client.get(status) or b"{}")["status"] == 1  # php-resque-ex: waiting
    assert client.zcard("resque:delayed_queue_schedule") == 1  # the one an hour away
    assert len(client.keys("resque:timestamps:*")) == 1 and len(client.keys("resque:delayed:*")) == 1
    assert not client.keys("resque:_schdlr_*")
    scheduler.send_signal(signal.SIGTERM)
    assert scheduler.wait(timeout=20) == 0
    app.broker.close()


def test_delayed_jobs_another_scheduler_moved_meanwhile_are_not_moved_twice(private_redis: RedisServer) -> None:
    app = Resq(private_redis.url(0))
    client = redis.Redis(port=private_redis.port)
    app.resque.enqueue_in(0, "Archive", [1, "a"], queue="mail")
    keys, wire = ResqueKeys("resque"), app.broker.resque
    (second,) = wire.due_seconds(keys, int(time.time()) + 1, 10)
    items = wire.delayed_items(keys, second, 10)
    client.lpop(keys.delayed(second))  # another resque-scheduler took it after we read it
    assert wire.move_delayed(keys, second, [(items[0], "mail", items[0])]) == 0
    assert client.llen("resque:queue:mail") == 0
    delayed = ResqueDelayed(app)
    moved, nxt = delayed.promote(int(time.time() * 1000) + 1000)  # the empty second is dropped
    assert (moved, nxt) == (0, None) and client.zcard(keys.delayed_schedule) == 0
    # an item naming no queue (its own scheduler knows its class's queue) stays, and is no wake-up: a
    # scheduler would spin on a second that stays due
    client.rpush(keys.delayed(second), '{"class":"Archive","args":[2]}')
    client.zadd(keys.delayed_schedule, {str(second): second})
    app.resque.enqueue_in(timedelta(hours=1), "Archive", [3, "c"], queue="mail")
    moved, nxt = delayed.promote(int(time.time() * 1000) + 1000)
    assert moved == 0 and nxt is not None and nxt > time.time() * 1000 + 3_000_000  # the one an hour away
    assert client.llen(keys.delayed(second)) == 1 and client.llen("resque:queue:mail") == 0
    app.broker.close()


def test_bad_resque_options_are_one_clear_line(private_redis: RedisServer, run_resq: RunResq) -> None:
    url = private_redis.url(0)
    for args, match in (
        (("worker", "--resque-queues", "a:b"), "invalid Resque queue name"),
        (("worker", "--resque-queues", "mail", "--resque-namespace", "bad space"), "invalid Resque namespace"),
        (("scheduler", "--resque-namespace", "resque"), "--resque-namespace goes with --resque"),
    ):
        proc = run_resq(args[0], *args[1:], app_ref=APP, url=url)
        assert proc.wait(timeout=20) == 2
        output = read_log(proc)
        assert match in output and "Traceback" not in output, output
    app = Resq(url)
    with pytest.raises(ConfigError, match="resque_class is a Resque job class name"):
        app.task(resque_class=" X")
    app.task(resque_class="Mail", name="a")(lambda: None)
    with pytest.raises(ConfigError, match="two tasks run the Resque class 'Mail'"):
        app.task(resque_class="Mail", name="b")(lambda: None)
    assert redis.Redis(port=private_redis.port).dbsize() == 0


def test_the_backlog_stays_in_the_resque_list_beyond_what_resqs_queue_holds(private_redis: RedisServer) -> None:
    """A worker takes from a Resque list only while resq's queue holds fewer than ``MOST_WAITING`` entries:
    the rest stays in the list, where the Resque family's tools count it and its workers may take it."""
    from tests.apps import resqueapp

    resqueapp.app.reconfigure(url=private_redis.url(0))
    client = redis.Redis(port=private_redis.port)
    extra = 300
    jobs = [RUBY_JOB] * (MOST_WAITING + extra)
    client.rpush("resque:queue:mail", *jobs)
    queues = ResqueQueues(resqueapp.app, ["mail"], "resque", "here:1:mail")
    assert queues.step() == MOST_WAITING
    stream = resqueapp.app.broker.keys.queue("mail")
    assert client.xlen(stream) == MOST_WAITING and client.llen("resque:queue:mail") == extra
    assert queues.step() == 0  # resq's queue is full: the list keeps the rest
    client.xtrim(stream, maxlen=MOST_WAITING - 100, approximate=False)  # workers ran 100 of them
    assert queues.step() == 100 and client.llen("resque:queue:mail") == extra - 100
    assert queues.step(everything=True) == extra - 100  # --burst: whatever waits
    assert client.hlen("resque:resq:in-flight:here:1:mail") == 0
    resqueapp.app.broker.close()


def test_jobs_of_a_unique_task_are_made_one_at_a_time_through_its_lock(private_redis: RedisServer) -> None:
    from tests.apps import resqueapp

    resqueapp.app.reconfigure(url=private_redis.url(0))
    client = redis.Redis(port=private_redis.port)
    client.rpush("resque:queue:mail", '{"class":"Once","args":[1]}', '{"class":"Once","args":[1]}', RUBY_JOB)
    queues = ResqueQueues(resqueapp.app, ["mail"], "resque", "here:1:mail")
    assert queues.step() == 3
    stream = resqueapp.app.broker.keys.queue("mail")
    entries = client.xrange(stream)
    assert len(entries) == 2  # the second call of the unique task went to the first's job; Archive's is there
    assert [resqueapp.app.job(f"resque:{n}").status() for n in (1, 3)] == ["queued", "queued"]
    assert client.hlen("resque:resq:in-flight:here:1:mail") == 0 and client.llen("resque:queue:mail") == 0
    resqueapp.app.broker.close()
