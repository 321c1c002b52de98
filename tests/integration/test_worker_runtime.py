"""The worker runtime with real processes, real signals and a real redis-server (issue 3)."""

from __future__ import annotations

import os
import signal
from collections import Counter
from typing import Any

import pytest
import redis

from resq import JobCancelled, JobFailed, Resq
from tests.helpers import burst, read_log, wait_for

APP = "tests.apps.runtime:app"


@pytest.fixture
def app(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("RESQ_REDIS_URL", redis_url)
    from tests.apps import runtime

    runtime.app.reconfigure(url=redis_url)
    return runtime


def _ints(client: redis.Redis, key: str) -> list[int]:
    return [int(x) for x in client.lrange(key, 0, -1)]


def test_sigkill_of_the_whole_worker_tree_loses_no_job(app: Any, redis_client: redis.Redis, run_worker: Any) -> None:
    # Given 40 jobs and a two-process worker killed with SIGKILL (whole process group) in the middle
    jobs = [app.work.delay(i, 0.1) for i in range(40)]
    first = run_worker(APP, "-c", "2", "--heartbeat-interval", "1")
    wait_for(lambda: len(_ints(redis_client, "runtime:done")) >= 5, message="first jobs done")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    # When another worker starts
    run_worker(APP, "-c", "2", "--heartbeat-interval", "1")
    # Then every job completes; only jobs that were running when the tree died ran twice
    wait_for(lambda: set(_ints(redis_client, "runtime:done")) == set(range(40)), timeout=40, message="all 40 jobs done")
    # (a job killed between its body's end and its recorded success is run again once it is reaped)
    wait_for(lambda: all(job.status() == "succeeded" for job in jobs), timeout=20, message="all 40 succeeded")
    reruns = [i for i, n in Counter(_ints(redis_client, "runtime:started")).items() if n > 1]
    assert len(reruns) <= 2, f"only the jobs running at the kill may run again, got {reruns}"


def test_sigterm_lets_running_jobs_finish_and_runs_none_twice(
    app: Any, redis_client: redis.Redis, run_worker: Any
) -> None:
    # Given 1 s jobs, and a worker that gets TERM while two of them run
    for i in range(6):
        app.work.delay(i, 1.0)
    worker = run_worker(APP, "-c", "2")
    wait_for(lambda: len(_ints(redis_client, "runtime:started")) >= 2, message="two jobs running")
    worker.send_signal(signal.SIGTERM)
    # Then it exits 0 once the running jobs are done, and the jobs it started are complete
    assert worker.wait(timeout=20) == 0, read_log(worker)
    assert Counter(_ints(redis_client, "runtime:started")) == Counter(_ints(redis_client, "runtime:done"))
    # And a burst worker finishes the rest, none of them twice
    burst(run_worker, APP, "-c", "2")
    assert sorted(_ints(redis_client, "runtime:done")) == list(range(6))


def test_hard_timeout_fails_the_attempt_and_retries_by_policy(
    app: Any, redis_client: redis.Redis, run_worker: Any
) -> None:
    job = app.too_slow.delay()
    run_worker(APP, "--burst").wait(timeout=30)
    assert job.status() == "dead"
    info = job.info()
    assert info["error"]["message"] == "timeout after 1 s"
    assert info["attempts"] == 2
    assert int(redis_client.get("runtime:too_slow_runs") or 0) == 2


def test_a_task_that_cannot_be_interrupted_is_killed_with_its_child(app: Any, run_worker: Any) -> None:
    # The task blocks SIGALRM: past its hard limit the supervisor kills its child and records the timeout
    job = app.uninterruptible.delay()
    good = app.work.delay(1)
    worker = run_worker(APP)
    with pytest.raises(JobFailed, match="timeout after 1 s"):
        job.result(timeout=40)
    assert good.result(timeout=20) == 1  # on the child that replaced the killed one
    assert "child_killed" in read_log(worker)


def test_hard_timeout_interrupts_busy_tasks_on_every_thread_without_a_kill(app: Any, run_worker: Any) -> None:
    jobs = [app.spins.delay() for _ in range(2)]
    worker = run_worker(APP, "--threads", "2")
    for job in jobs:
        with pytest.raises(JobFailed, match="timeout after 1 s"):
            job.result(timeout=30)
    assert "child_killed" not in read_log(worker)


@pytest.mark.cluster
def test_soft_timeout_is_raised_inside_the_task(app: Any, redis_client: redis.Redis, run_worker: Any) -> None:
    job = app.cleans_up.delay()
    run_worker(APP, "--burst").wait(timeout=30)
    assert job.result(timeout=1) == "cleaned"
    assert redis_client.get("runtime:soft") == b"caught"


def test_usr1_kills_the_running_job_and_the_worker_goes_on(
    app: Any, redis_client: redis.Redis, run_worker: Any
) -> None:
    long_job = app.work.delay(1, 30)
    worker = run_worker(APP)
    # the task itself says it runs (the status turns `running` a moment before the task is entered)
    wait_for(lambda: _ints(redis_client, "runtime:started") == [1], message="long job running")
    worker.send_signal(signal.SIGUSR1)
    with pytest.raises(JobFailed, match="killed by USR1"):
        long_job.result(timeout=10)
    assert app.work.delay(2).result(timeout=10) == 2


def test_usr2_pauses_fetching_and_cont_resumes(app: Any, run_worker: Any) -> None:
    worker = run_worker(APP)
    assert app.work.delay(0).result(timeout=10) == 0
    worker.send_signal(signal.SIGUSR2)
    wait_for(lambda: "SIGUSR2" in read_log(worker), message="pause logged")
    job = app.work.delay(1)
    with pytest.raises(Exception, match="did not finish"):
        job.result(timeout=2.5)
    assert job.status() == "queued"
    worker.send_signal(signal.SIGCONT)
    assert job.result(timeout=10) == 1


def test_a_poison_job_that_kills_its_child_goes_dead_as_worker_lost(
    app: Any, redis_client: redis.Redis, run_worker: Any
) -> None:
    job = app.crash.delay()
    worker = run_worker(APP)
    with pytest.raises(JobFailed, match="worker lost"):
        job.result(timeout=30)
    assert int(redis_client.get("runtime:crash_runs") or 0) == 3
    # the children were replaced each time: the worker still works
    assert app.work.delay(7).result(timeout=10) == 7
    assert read_log(worker).count("child_exited") >= 3


def test_threads_run_jobs_side_by_side(app: Any, run_worker: Any) -> None:
    jobs = [app.overlap.delay(i, 2.0) for i in range(4)]
    run_worker(APP, "--threads", "4")
    spans = [job.result(timeout=20) for job in jobs]
    starts, ends = [s for s, _ in spans], [e for _, e in spans]
    assert max(starts) < min(ends), f"the four jobs should overlap in time: {spans}"


def test_async_and_sync_tasks_mix_in_one_worker(app: Any, run_worker: Any) -> None:
    run_worker(APP, "--threads", "2")
    async_job, sync_job = app.async_add.delay(2, 3), app.work.delay(4)
    assert async_job.result(timeout=10) == 5
    assert sync_job.result(timeout=10) == 4


def test_max_jobs_per_child_recycles_children(app: Any, run_worker: Any) -> None:
    run_worker(APP, "--max-jobs-per-child", "1")
    pids = {app.pid.delay().result(timeout=10) for _ in range(3)}
    assert len(pids) == 3


@pytest.mark.cluster
def test_cancel_queued_scheduled_and_running_jobs(app: Any, run_worker: Any) -> None:
    queued = app.work.apply_async((1,), queue="idle")
    scheduled = app.work.enqueue_in(60, 2)
    assert queued.cancel() == "cancelled" and queued.status() == "cancelled"
    assert scheduled.cancel() == "cancelled" and scheduled.status() == "cancelled"
    running = app.work.delay(3, 30)
    run_worker(APP)
    wait_for(lambda: running.status() == "running", message="job running")
    assert running.cancel() == "running"
    with pytest.raises(JobCancelled):
        running.result(timeout=10)
    assert running.status() == "cancelled"


# single-only: it kills and restarts a redis-server of its own (private_redis)
def test_worker_survives_a_redis_restart(private_redis: Any, run_worker: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    url = private_redis.url(0)
    from tests.apps import runtime

    runtime.app.reconfigure(url=url)
    worker = run_worker(APP, url=url)
    assert runtime.work.delay(1).result(timeout=10) == 1
    # When Redis dies and comes back (empty: it keeps nothing on disk)
    private_redis.kill()
    wait_for(lambda: "redis_unavailable" in read_log(worker), message="outage logged")
    private_redis.restart()
    # Then the same worker takes new jobs
    assert runtime.work.delay(2).result(timeout=30) == 2
    assert worker.poll() is None


def test_burst_exits_zero_when_the_queues_are_empty(app: Any, run_worker: Any) -> None:
    jobs = [app.attempt.delay() for _ in range(3)]
    burst(run_worker, APP, "-c", "2")
    assert [job.result(timeout=1) for job in jobs] == [1, 1, 1]


@pytest.mark.cluster
def test_reaper_gives_back_leases_of_a_worker_that_vanished(redis_url: str) -> None:
    # Given a consumer that leased a job and never heartbeat again (a machine that lost power)
    app = Resq(redis_url, heartbeat_interval=0.1)

    @app.task(name="noop")
    def noop() -> int:
        return 1

    job = noop.delay()
    app.broker.queues.ensure_groups(["default"])
    app.broker.workers.register("ghost", {"host": "gone"})
    assert app.broker.queues.fetch("ghost", ["default"], 1, None)
    from resq.maintenance import Maintenance

    # When the heartbeat deadline has passed, a reaper suspects it, and gives the lease back when a look
    # one heartbeat interval later still finds it silent
    wait_for(lambda: "ghost" not in app.broker.workers.live(), message="ghost silent")
    reaper = Maintenance(app, ["default"])
    assert reaper.reap() == 0  # the first look only suspects it
    assert app.broker.queues.pending_of("default", "ghost")
    assert wait_for(reaper.reap, timeout=5, interval=0.05, message="the confirming look") == 1
    assert job.status() == "queued"


def test_queues_are_served_in_strict_priority_order(app: Any, redis_client: redis.Redis, run_worker: Any) -> None:
    for i in range(3):
        app.work.apply_async((100 + i,), queue="low")
    for i in range(3):
        app.work.apply_async((i,), queue="high")
    burst(run_worker, APP, "-q", "high,low")
    assert _ints(redis_client, "runtime:started") == [0, 1, 2, 100, 101, 102]


def test_a_second_term_stops_at_once_and_gives_the_job_back(
    app: Any, redis_client: redis.Redis, run_worker: Any
) -> None:
    job = app.work.delay(1, 30)
    worker = run_worker(APP)
    wait_for(lambda: job.status() == "running", message="job running")
    worker.send_signal(signal.SIGTERM)
    wait_for(lambda: "stopping" in read_log(worker), message="first TERM seen")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=15) == 0
    assert job.status() == "queued"
    assert job.info()["attempts"] == 0  # handed back: the interrupted attempt does not count


def test_quit_waits_for_running_jobs_without_a_time_limit(app: Any, redis_client: redis.Redis, run_worker: Any) -> None:
    job = app.work.delay(1, 2.0)
    worker = run_worker(APP, "--grace-period", "0.5")
    wait_for(lambda: job.status() == "running", message="job running")
    worker.send_signal(signal.SIGQUIT)
    assert worker.wait(timeout=20) == 0
    assert job.status() == "succeeded"


def test_workers_obey_remote_commands_through_redis(app: Any, run_worker: Any) -> None:
    import time

    import msgpack

    client = app.app.broker.connection.client

    def send(cmd: str) -> None:
        message = msgpack.packb({"cmd": cmd, "target": "*", "at_ms": int(time.time() * 1000)})
        client.hset(app.app.broker.keys.control_state, "*", message)
        client.publish(app.app.broker.keys.control, message)

    worker = run_worker(APP)
    assert app.work.delay(0).result(timeout=10) == 0
    send("pause")
    wait_for(lambda: "remote_command" in read_log(worker), message="pause applied")
    job = app.work.delay(1)
    with pytest.raises(Exception, match="did not finish"):
        job.result(timeout=2)
    send("resume")
    assert job.result(timeout=10) == 1
    send("stop")
    assert worker.wait(timeout=15) == 0


def test_a_task_calling_sys_exit_fails_instead_of_ending_the_child(redis_url: str, run_worker: Any) -> None:
    from tests.apps import runtime

    runtime.app.reconfigure(url=redis_url)
    job = runtime.exits.delay()
    run_worker(APP)
    with pytest.raises(JobFailed, match="SystemExit"):
        job.result(timeout=15)
    assert job.info()["attempts"] == 1


def test_children_that_crash_as_they_start_are_replaced_after_a_growing_pause(
    app: Any, redis_client: redis.Redis, run_worker: Any
) -> None:
    # The crash job kills each child right after it starts: the supervisor backs off between spawns
    app.crash.delay()
    worker = run_worker(APP)
    wait_for(lambda: read_log(worker).count("child_respawn_delayed") >= 2, timeout=30, message="respawn delayed")
    assert worker.poll() is None
    assert app.work.delay(5).result(timeout=30) == 5


def test_a_worker_pruned_by_mistake_is_described_whole_again_at_its_next_heartbeat(
    app: Any, redis_client: redis.Redis, run_worker: Any
) -> None:
    """After a false prune (the worker looked dead for a while: paused, cut off), its heartbeat brings back
    the whole record (host, pid, queues), not a heartbeat alone (issue 11 item 6)."""
    worker = run_worker(APP, "--heartbeat-interval", "0.5")
    assert app.work.delay(1).result(timeout=10) == 1
    [child] = [w for w in app.app.broker.workers.live()]
    before = app.app.broker.workers.info([child])[0]
    app.app.broker.workers.unregister([child])  # what a reaper does to a worker it judged dead
    assert app.app.broker.workers.info([child]) == [{}]
    again = wait_for(lambda: app.app.broker.workers.info([child])[0], timeout=10, message="the next heartbeat")
    assert {k: again.get(k) for k in ("host", "pid", "supervisor", "queues")} == {
        k: before[k] for k in ("host", "pid", "supervisor", "queues")
    }
    assert child in app.app.broker.workers.live() and worker.poll() is None
