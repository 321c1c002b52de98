"""resq runs whole as a least-privilege Redis ACL user: the rule ``resq acl`` prints (``resq.broker.acl``)
allows the namespace's keys (``{ns}:*``, ``{ns:<queue>}:*``) and channels (``{ns}:*``) and only the
commands resq sends. Producers, a worker (a job that succeeds, one that retries, one that dies, one whose
process crashes, a cancellation), a scheduler (a cron entry, a delayed job), the operator's commands,
events and metrics all run as that user, and Redis's ``ACL LOG`` stays empty: no key, channel or command
outside the rule was ever asked for. The rule for ``resq`` does not reach ``resq2``.

The worker and scheduler subprocesses load this module's ``app`` (``-A tests.integration.test_acl:app``):
its tasks touch no key of their own, since the user may touch nothing outside the namespace.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result

import resq
from resq import BrokerRefused, JobCancelled, JobFailed, JobStatus, Resq, current_job
from resq.broker.acl import ACL_COMMANDS, acl_setuser, parse_version
from resq.cli import main
from tests.conftest import RunResq, RunWorker
from tests.helpers import read_log, wait_for
from tests.redis_server import RedisServer

APP = "tests.integration.test_acl:app"
PASSWORD = "acl-test-pass-7f3a"
#: Commands of the rule that redis-py sends only for some urls (a /db, a client_name, RESP2 or 3) or servers.
HANDSHAKE_ONLY = {"auth", "hello", "select", "client|setname", "client|setinfo"}
#: Commands of the rule sent only to repair Redis state: RENAME sets aside a key of the wrong type.
REPAIR_ONLY = {"rename"}
#: Commands of the rule sent only with a setting the scenario leaves off: WAIT (``wait_replicas``), and those
#: of a Redis Cluster (the scenario runs on one Redis).
OPT_IN_ONLY = {"wait", "cluster|slots", "command", "command|getkeys", "client|id", "client|unblock"}
#: Commands of the rule sent only for the Resque family's keys (``resq acl --resque``): the scenario of
#: ``test_the_resque_interop_runs_as_a_user_with_the_resque_keys`` sends them.
RESQUE_ONLY = {"lrange", "ltrim", "llen"}
#: Where ``app`` points until a test binds it: nothing listens on port 1 (never the Redis on 6379).
UNBOUND = "redis://127.0.0.1:1/0"

app = Resq(os.environ.get("RESQ_REDIS_URL") or UNBOUND)


@app.task(name="acl.double", retries=0)
def double(x: int) -> int:
    return 2 * x


@app.task(name="acl.limited", concurrency=1, concurrency_key=lambda user, **_: user, rate_limit="100/s", priority=5)
def limited(user: str) -> str:
    return user


@app.task(name="acl.flaky", retries=2, backoff=0.05)
def flaky() -> int:
    """Fails its first attempt, succeeds on the retry."""
    job = current_job()
    assert job is not None
    if job.attempt == 1:
        raise RuntimeError("the first attempt fails")
    return job.attempt


@app.task(name="acl.doomed", retries=0)
def doomed() -> None:
    raise ValueError("this job always fails")


@app.task(name="acl.crashes_once", retries=0)
def crashes_once() -> int:
    """Kills its worker process on the first attempt (the supervisor gives the job back), then succeeds."""
    job = current_job()
    assert job is not None
    if job.attempt == 1:
        os._exit(3)
    return job.attempt


@app.task(name="acl.sleeps", retries=0)
def sleeps(seconds: float) -> None:
    time.sleep(seconds)


@app.task(name="acl.send_mail", resque_class="SendMail")
def send_mail(to: str) -> str:
    """Runs the Resque family's ``SendMail`` jobs (``--resque-queues``)."""
    return to


@app.task(name="acl.bounce", resque_class="Bounce")
def bounce(to: str) -> None:
    raise ValueError(f"{to} bounced")


@app.periodic(cron="* * * * * *", name="acl.tick", unique=True)
def tick() -> None:
    """A cron entry fired every second by the scheduler (``unique``: its lock is a key too)."""


# -- helpers ------------------------------------------------------------------------------------------


def server_version(admin: redis.Redis) -> tuple[int, int]:
    return parse_version(str(admin.info("server")["redis_version"]))


def add_user(admin: redis.Redis, user: str, namespace: str, resque: str | None = None) -> str:
    """Create ``user`` with the line ``resq acl`` prints for ``namespace`` (and the Resque namespace
    ``resque``: ``--resque-namespace``); returns its url."""
    version = ".".join(map(str, server_version(admin)))
    more = () if resque is None else ("--resque-namespace", resque)
    printed = cli(
        UNBOUND, "acl", "--user", user, "--password", PASSWORD, "--namespace", namespace, "--redis-version", version,
        *more,
    )  # fmt: skip
    assert printed.exit_code == 0, printed.output
    line = printed.stdout.strip()
    assert line == acl_setuser(user, PASSWORD, namespace, parse_version(version), resque)
    assert admin.execute_command(*line.split())  # type: ignore[no-untyped-call]  # the very line, as redis-cli sends it
    port = admin.connection_pool.connection_kwargs["port"]
    return f"redis://{user}:{PASSWORD}@127.0.0.1:{port}/0"


def acl_log(admin: redis.Redis) -> list[dict[str, Any]]:
    """Redis's ACL LOG: one entry per denied command, key or channel (``reason``, ``object``)."""
    return list(admin.acl_log())


def used_commands(admin: redis.Redis) -> set[str]:
    """The commands the server ran since ``CONFIG RESETSTAT`` (scripts' own included), as ACL names."""
    return {name.removeprefix("cmdstat_") for name in admin.info("commandstats")}


def cli(url: str, *args: str, namespace: str = "resq") -> Result:
    """``resq ARGS`` in this process, with click's runner, against ``url`` (no app from the environment)."""
    env = {"RESQ_REDIS_URL": url, "RESQ_NAMESPACE": namespace, "RESQ_APP": None}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def ok(url: str, *args: str) -> str:
    done = cli(url, *args)
    assert done.exit_code == 0, f"resq {' '.join(args)}: {done.output}"
    return done.stdout


def numsub(admin: redis.Redis, channel: str) -> int:
    return int(dict(admin.pubsub_numsub(channel)).get(channel.encode(), 0))


def stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> int:
    """SIGTERM the process group and wait: a clean stop runs the shutdown path (as the user) too."""
    os.killpg(proc.pid, signal.SIGTERM)
    return proc.wait(timeout=timeout)


@pytest.fixture
def acl_redis() -> Iterator[tuple[RedisServer, redis.Redis]]:
    """A private redis-server and a client of its (unrestricted) default user, the admin."""
    server = RedisServer()
    admin = redis.Redis(port=server.port)
    try:
        yield server, admin
    finally:
        admin.close()
        app.reconfigure(url=UNBOUND, namespace="resq")
        server.cleanup()


# -- the proof ----------------------------------------------------------------------------------------


def test_everything_runs_as_the_least_privilege_user(
    acl_redis: tuple[RedisServer, redis.Redis], run_worker: RunWorker, run_resq: RunResq, free_port: int
) -> None:
    _, admin = acl_redis
    url = add_user(admin, "resq-app", "resq")
    admin.config_resetstat()
    app.reconfigure(url=url, namespace="resq")
    env = {"RESQ_NAMESPACE": "resq"}

    events = run_resq("events", "--json", url=url, env=env)  # first: events are published only to listeners
    wait_for(lambda: numsub(admin, "{resq}:events") == 1, message="resq events subscribed")
    worker = run_worker(
        APP, "-q", "default,other", "-c", "2", "--heartbeat-interval", "0.5", "--metrics-port", str(free_port),
        url=url, env=env,
    )  # fmt: skip
    scheduler = run_resq("scheduler", app_ref=APP, url=url, env=env)

    # producers: delay, a delayed job, bulk enqueue, results, a retry, a death, a crash, cancellations
    first = double.delay(21)
    later = double.enqueue_in(0.3, 5)
    assert later.status() == JobStatus.SCHEDULED
    mapped = double.map(range(3))
    mixed = app.enqueue_many([(double, (10,)), ("acl.double", (11,), {})], queue="other")
    retried, dead, crashed = flaky.delay(), doomed.delay(), crashes_once.delay()
    flow = [limited.delay("ada"), limited.delay("ada")]  # a priority, a concurrency key and a rate limit
    flow.append(double.apply_async((50,), group="vip"))  # a group: handed out by the take script
    app.pause_group("later", queue="default")
    assert app.resume_group("later", queue="default") == 0  # a group's pause and resume (ZSCAN)
    far = double.enqueue_in(3600, 0)
    assert far.cancel() == JobStatus.CANCELLED
    assert first.result(timeout=15) == 42
    assert later.result(timeout=10) == 10
    assert [j.result(timeout=10) for j in mapped + mixed] == [0, 2, 4, 20, 22]
    assert retried.result(timeout=10) == 2
    with pytest.raises(JobFailed, match="this job always fails"):
        dead.result(timeout=10)
    assert crashed.result(timeout=15) == 2
    assert [j.result(timeout=10) for j in flow] == ["ada", "ada", 100]
    assert app.job(first.id).info()["status"] == "succeeded"
    # workflows: a chord (a join's keys, {resq:wf:…}), a batch and a depends_on, and `resq batch`
    chord = resq.chord([double.s(1), double.s(2)], double.si(3)).delay()
    with app.batch(on_complete=double.si(4)) as batch:
        double.delay(5)
    after = double.apply_async((6,), depends_on=[first])
    assert (chord.result(timeout=10), after.result(timeout=10)) == (6, 12)
    wait_for(lambda: json.loads(ok(url, "batch", batch.id, "--json"))["complete"], timeout=10, message="batch")

    running = sleeps.delay(30)
    wait_for(lambda: running.status() == JobStatus.RUNNING, message="the sleeper runs")
    assert running.cancel() == JobStatus.RUNNING  # the worker is asked to stop it
    with pytest.raises(JobCancelled):
        running.result(timeout=10)

    # the operator's commands
    assert json.loads(ok(url, "job", first.id, "--json"))["status"] == "succeeded"
    assert dead.id in ok(url, "dead", "list", "--json")
    assert "this job always fails" in ok(url, "dead", "show", dead.id)
    ok(url, "dead", "retry", dead.id)
    wait_for(lambda: sum(e["event"] == "dead" for e in dead.info()["history"]) == 2, timeout=10, message="dead again")
    ok(url, "dead", "purge", "--yes")
    assert json.loads(ok(url, "dead", "list", "--json")) == []

    soon = double.enqueue_in(3600, 7)
    assert soon.id in ok(url, "scheduled", "list")
    ok(url, "scheduled", "run-now", soon.id)
    assert soon.result(timeout=10) == 14
    gone = double.enqueue_in(3600, 8)
    ok(url, "scheduled", "remove", gone.id)
    assert gone.status() == JobStatus.CANCELLED

    idle = double.apply_async(args=(1,), queue="idle")  # a queue no worker serves
    assert "1" in ok(url, "queue", "clear", "idle", "--yes")
    with pytest.raises(Exception, match="no job"):
        idle.status()
    enqueued = json.loads(ok(url, "enqueue", "acl.double", "--args", "[50]", "--json"))
    assert app.job(enqueued["id"]).result(timeout=10) == 100

    wait_for(lambda: len(json.loads(ok(url, "workers", "--json"))) == 2, message="two live workers")
    ok(url, "workers", "pause", "--all")
    assert all(w["paused"] for w in json.loads(ok(url, "workers", "--json")))
    wait_for(lambda: "remote_command" in read_log(worker), message="the worker got the pause")
    time.sleep(0.5)  # its children stop fetching
    held = double.delay(3)
    time.sleep(0.5)
    assert held.status() == JobStatus.QUEUED
    ok(url, "workers", "resume", "--all")
    assert held.result(timeout=10) == 6

    ok(url, "cron", "pause", "acl.tick", "-A", APP)
    ok(url, "cron", "resume", "acl.tick", "-A", APP)
    ok(url, "cron", "run", "acl.tick", "-A", APP)
    entries = json.loads(ok(url, "cron", "list", "--json", "-A", APP))
    assert [e["name"] for e in entries] == ["acl.tick"]
    by_task = "{resq}:stat:by_task"
    wait_for(lambda: int(admin.hget(by_task, "acl.tick|default|processed") or 0) >= 2, message="cron ticks ran")

    # counters are advisory (a crashed child loses its last half second of them): that they are read
    totals = json.loads(ok(url, "stats", "--json", "--days", "1"))["total"]
    assert totals["processed"] >= 5 and totals["dead"] >= 1, totals
    assert {q["name"] for q in json.loads(ok(url, "queues", "--json"))} >= {"default", "other"}
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{free_port}/metrics", timeout=5).read().decode()
    assert 'task="acl.double"' in metrics, metrics[:2000]

    assert stop(worker) == 0, read_log(worker)
    assert stop(scheduler) == 0, read_log(scheduler)
    stop(events)
    followed = [json.loads(line)["event"] for line in read_log(events).splitlines() if line.startswith("{")]
    assert {"enqueued", "scheduled", "started", "succeeded", "retrying", "dead", "cancelled"} <= set(followed)

    # the proof: Redis denied nothing, and every key is the namespace's
    assert acl_log(admin) == []
    assert all(k.startswith((b"{resq}:", b"{resq:")) for k in admin.scan_iter(count=1000))
    for proc in (worker, scheduler, events):
        assert PASSWORD not in read_log(proc)
    assert f"resq-app:***@127.0.0.1:{admin.connection_pool.connection_kwargs['port']}" in read_log(worker)
    # and the rule holds no command resq does not send: this run used every one, but those the
    # handshake sends only for some urls or servers (AUTH or HELLO, SELECT, CLIENT SETNAME and SETINFO)
    # and the repair of a key of the wrong type
    unused = {c for c in ACL_COMMANDS if c not in used_commands(admin)}
    assert unused <= HANDSHAKE_ONLY | REPAIR_ONLY | OPT_IN_ONLY | RESQUE_ONLY


def test_the_rule_of_one_namespace_does_not_reach_another(
    acl_redis: tuple[RedisServer, redis.Redis], run_worker: RunWorker, run_resq: RunResq
) -> None:
    """``~{resq}:* ~{resq:*`` and ``&{resq}:*`` leave ``{resq2}`` out (``~{resq*`` would not)."""
    _, admin = acl_redis
    url = add_user(admin, "resq-app", "resq")
    other = Resq(url, namespace="resq2", broker_retry_s=30)
    began = time.monotonic()
    with pytest.raises(BrokerRefused, match="ACL user"):
        other.enqueue_many([("acl.double", (1,))])
    assert time.monotonic() - began < 5  # refused, not retried for broker_retry_s
    other.broker.close()

    worker = run_worker(APP, "--no-banner", url=url, env={"RESQ_NAMESPACE": "resq2"})
    follower = run_resq("events", url=url, env={"RESQ_NAMESPACE": "resq2"})
    for proc in (worker, follower):
        code = proc.wait(timeout=15)
        log = read_log(proc)
        assert code == 2, log
        assert "refused resq" in log and "ACL user" in log, log
        assert "Traceback" not in log and PASSWORD not in log, log
        assert len([line for line in log.splitlines() if "refused resq" in line]) == 1, log
    denied = acl_log(admin)
    assert denied and {e["reason"] for e in denied} >= {"key", "channel"}, denied
    assert all(e["object"].startswith("{resq2") for e in denied if e["reason"] in ("key", "channel")), denied
    assert not list(admin.scan_iter(match="{resq2*"))


def test_the_rule_works_for_any_namespace(acl_redis: tuple[RedisServer, redis.Redis], run_worker: RunWorker) -> None:
    _, admin = acl_redis
    url = add_user(admin, "shop-app", "shop")
    app.reconfigure(url=url, namespace="shop")
    jobs = [double.delay(4), flaky.delay()]
    worker = run_worker(APP, "--burst", "--no-banner", url=url, env={"RESQ_NAMESPACE": "shop"})
    assert worker.wait(timeout=30) == 0, read_log(worker)
    assert [j.result(timeout=5) for j in jobs] == [8, 2]
    stats = cli(url, "stats", "--json", namespace="shop")
    assert stats.exit_code == 0 and json.loads(stats.stdout)["total"]["processed"] == 3, stats.output
    assert acl_log(admin) == []
    keys = list(admin.scan_iter(count=1000))
    assert keys and all(k.startswith((b"{shop}:", b"{shop:")) for k in keys)


def test_the_resque_interop_runs_as_a_user_with_the_resque_keys(
    acl_redis: tuple[RedisServer, redis.Redis], run_worker: RunWorker, run_resq: RunResq
) -> None:
    """``resq acl --resque-namespace resque`` adds ``~resque:*``: Resque-family jobs produced, taken by a
    worker (one succeeds, one fails, one has a class no task runs), delayed jobs moved by the scheduler,
    all as that user, and Redis denies nothing."""
    _, admin = acl_redis
    url = add_user(admin, "resq-app", "resq", resque="resque")
    admin.config_resetstat()
    app.reconfigure(url=url, namespace="resq")
    app.resque.enqueue("SendMail", ["a@b.c"], queue="mail", track=True)
    app.resque.enqueue("Bounce", ["b@b.c"], queue="mail")
    app.resque.enqueue("Unknown", [], queue="mail")
    app.resque.enqueue_in(0.5, "SendMail", ["later@b.c"], queue="mail")
    env = {"RESQ_NAMESPACE": "resq"}
    worker = run_worker(APP, "--no-banner", "--resque-queues", "mail", url=url, env=env)
    scheduler = run_resq("scheduler", "--resque", app_ref=APP, url=url, env=env)
    wait_for(lambda: admin.get("resque:stat:processed") == b"4", message=f"four Resque jobs ended:\n{read_log(worker)}")
    assert admin.llen("resque:failed") == 2 and admin.get("resque:stat:failed") == b"2"
    assert stop(worker) == 0, read_log(worker)
    assert stop(scheduler) == 0, read_log(scheduler)
    assert acl_log(admin) == []
    assert all(k.startswith((b"{resq}:", b"{resq:", b"resque:")) for k in admin.scan_iter(count=1000))
    assert RESQUE_ONLY - used_commands(admin) == set()
