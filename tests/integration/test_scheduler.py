"""``resq scheduler`` processes with real workers: periodic fires exactly once, delayed jobs never early."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import redis

from resq.broker.keys import Keys
from resq.codec import unpack
from tests.apps import sched as sched_module
from tests.conftest import REPO_ROOT, RunResq, RunWorker
from tests.helpers import read_log, wait_for
from tests.redis_server import RedisServer

K = Keys("resq")
APP = "tests.apps.sched:app"
PERIODIC_APP = "tests.apps.sched:periodic_app"

RunScheduler = Callable[..., "subprocess.Popen[bytes]"]


@pytest.fixture
def run_scheduler(run_resq: RunResq) -> RunScheduler:
    """Factory: ``run_scheduler(app_ref, *args, url=None)`` runs ``python -m resq scheduler`` in its own group."""

    def start(app_ref: str, *args: str, url: str | None = None) -> subprocess.Popen[bytes]:
        return run_resq("scheduler", "-A", app_ref, "--log-level", "DEBUG", *args, url=url)

    return start


def records(client: redis.Redis, key: str) -> list[list[Any]]:
    return [unpack(raw) for raw in client.lrange(key, 0, -1)]


def start_worker(run_worker: RunWorker, client: redis.Redis, app_ref: str) -> subprocess.Popen[bytes]:
    """A worker, waited for until it is registered (so no backlog builds up before it runs)."""
    proc = run_worker(app_ref, "-q", "default")
    wait_for(lambda: client.zcard(K.workers) > 0, timeout=20, message="worker registered")
    return proc


def test_every_second_entry_fires_once_per_tick_with_two_schedulers_and_survives_sigkill(
    sched: ModuleType, redis_client: redis.Redis, run_worker: RunWorker, run_scheduler: RunScheduler
) -> None:
    start_worker(run_worker, redis_client, PERIODIC_APP)
    first, second = run_scheduler(PERIODIC_APP), run_scheduler(PERIODIC_APP)
    fires = sched.FIRES_KEY
    wait_for(lambda: redis_client.llen(fires) >= 3, timeout=30, message="3 fires")

    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    after_kill = redis_client.llen(fires)
    wait_for(lambda: redis_client.llen(fires) >= after_kill + 3, timeout=30, message="fires after SIGKILL")
    assert second.poll() is None, read_log(second)

    rows = records(redis_client, fires)
    starts = sorted(row[0] for row in rows)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.5, f"two fires within 0.5 s: {gaps}"
    job_ids = [row[2] for row in rows]
    assert len(set(job_ids)) == len(job_ids), job_ids
    assert all(job_id.startswith("cron:sched.every_second:") for job_id in job_ids)


def test_delayed_jobs_due_at_one_instant_all_run_and_none_early(
    sched: ModuleType, redis_client: redis.Redis, run_worker: RunWorker, run_scheduler: RunScheduler
) -> None:
    start_worker(run_worker, redis_client, APP)
    run_scheduler(APP)
    due = time.time() + 2.0
    key = "test:sched:delayed"
    for i in range(40):
        if i % 2:
            sched.record.enqueue_at(datetime.fromtimestamp(due, UTC), key, due)
        else:
            sched.record.enqueue_in(due - time.time(), key, due)
    assert redis_client.zcard(K.scheduled("default")) == 40

    rows = wait_for(
        lambda: (r := records(redis_client, key)) and len(r) >= 40 and r, timeout=30, message="40 delayed jobs run"
    )
    assert len(rows) == 40
    early = [(started, due_at) for started, due_at, _ in rows if started < due_at]
    assert not early, f"jobs started before their due time: {early}"
    assert len({row[2] for row in rows}) == 40


def test_scheduler_stops_gracefully_on_sigterm(
    sched: ModuleType, redis_client: redis.Redis, run_scheduler: RunScheduler
) -> None:
    proc = run_scheduler(APP)
    wait_for(lambda: "scheduler_started" in read_log(proc), timeout=20, message="scheduler started")
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert "scheduler_stopped" in read_log(proc)


@pytest.mark.cluster
def test_scheduler_wakes_up_for_a_newly_scheduled_earlier_job(
    sched: ModuleType, redis_client: redis.Redis, run_scheduler: RunScheduler
) -> None:
    proc = run_scheduler(APP)
    # Nothing is scheduled: once it listens for wake-ups, the scheduler sleeps long
    wait_for(
        lambda: dict(redis_client.pubsub_numsub(K.wakeup)).get(K.wakeup.encode(), 0) >= 1,
        timeout=20,
        message="scheduler listening for wake-ups",
    )
    # A job due in 0.3 s must still be promoted: the producer's wake-up message cuts the sleep short
    job = sched.noop.enqueue_in(0.3)
    wait_for(lambda: job.status() == "queued", timeout=10, message="job promoted by the scheduler")
    assert "woken" in read_log(proc)


def test_bad_schedule_file_is_a_usage_error(sched: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[x]\ntask = "sched.record"\ncron = "99 * * * *"\n', encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "resq", "scheduler", "-A", APP, "--schedule", str(path)],
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
        cwd=str(REPO_ROOT),
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert b"invalid cron expression" in result.stderr


# single-only: it kills and restarts a redis-server of its own (private_redis)
def test_scheduler_rides_out_a_redis_restart(private_redis: RedisServer, run_scheduler: RunScheduler) -> None:
    url = private_redis.url(0)
    sched_module.bind(url)
    proc = run_scheduler(APP, url=url)
    wait_for(lambda: "scheduler_started" in read_log(proc), timeout=20, message="scheduler started")
    private_redis.kill()
    wait_for(lambda: "redis_unavailable" in read_log(proc), timeout=30, message="outage noticed")
    private_redis.restart()
    job = sched_module.noop.enqueue_in(0.2)
    wait_for(lambda: job.status() == "queued", timeout=30, message="job promoted after the restart")
    assert proc.poll() is None
