"""What ``resq worker`` says as it starts (the banner, ``worker_started``), and ``--scheduler`` (issue 9)."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from types import ModuleType

import redis

from resq.codec import unpack
from tests.conftest import REPO_ROOT, RunResq, RunWorker
from tests.helpers import burst, json_lines, read_log, wait_for

PERIODIC_APP = "tests.apps.sched:periodic_app"


def test_the_banner_comes_once_before_the_log_lines(core: ModuleType, redis_url: str, run_worker: RunWorker) -> None:
    log = read_log(burst(run_worker, "tests.apps.core:app", "-c", "2", "-q", "default,low", "--log-format", "json"))
    lines = log.splitlines()
    assert lines.count("[config]") == 1, log  # from the command, not from each child
    first_json = next(i for i, line in enumerate(lines) if line.startswith("{"))
    assert lines.index("[config]") < first_json
    assert f"  .> redis:       {redis_url}" in lines and "  .> queues:      default, low (in priority order)" in lines
    assert "  . tests.apps.core.add" in lines
    started = next(line for line in json_lines(log) if line["event"] == "worker_started")
    assert (started["url"], started["namespace"], started["queues"]) == (redis_url, "resq", ["default", "low"])
    assert "[config]" not in read_log(burst(run_worker, "tests.apps.core:app", "--no-banner"))


def _fires(client: redis.Redis, key: str) -> list[str]:
    return [unpack(raw)[2] for raw in client.lrange(key, 0, -1)]


def test_an_embedded_scheduler_fires_for_its_worker_and_once_per_tick_beside_a_standalone_one(
    sched: ModuleType, redis_client: redis.Redis, run_worker: RunWorker, run_resq: RunResq
) -> None:
    # Given a worker with --scheduler, alone: the every=1 entry fires and the worker runs the jobs
    worker = run_worker(PERIODIC_APP, "--scheduler")
    wait_for(lambda: _fires(redis_client, sched.FIRES_KEY), timeout=20, message="a fire, worker alone")
    assert "cron_fired" in read_log(worker)
    # When a standalone scheduler runs beside it
    standalone = run_resq("scheduler", "-A", PERIODIC_APP)
    wait_for(lambda: "scheduler_started" in read_log(standalone), timeout=20, message="standalone started")
    before = len(_fires(redis_client, sched.FIRES_KEY))
    wait_for(lambda: len(_fires(redis_client, sched.FIRES_KEY)) >= before + 2, timeout=20, message="2 more fires")
    # Then each tick ran once (deterministic ids, consecutive seconds), and the worker stops on TERM
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=10) == 0, read_log(worker)
    job_ids = _fires(redis_client, sched.FIRES_KEY)
    assert len(set(job_ids)) == len(job_ids), job_ids
    ticks = sorted(int(job_id.rsplit(":", 1)[1]) for job_id in job_ids)
    assert all(b - a >= 1000 for a, b in itertools.pairwise(ticks)), ticks


MISSING = """\
import sys
import resq.worker.supervisor as supervisor
supervisor.SCHEDULER_GROUP = "resq.no_such_group"  # as if resq_scheduler were not installed
from resq.cli import main
main(["worker", "-A", "tests.apps.sched:periodic_app", "--scheduler"])
"""


def test_scheduler_flag_without_the_scheduler_package_is_a_one_line_error(redis_url: str) -> None:
    env = {**os.environ, "RESQ_REDIS_URL": redis_url}
    done = subprocess.run([sys.executable, "-c", MISSING], env=env, cwd=REPO_ROOT, capture_output=True, timeout=60)
    assert done.returncode == 2
    err = done.stderr.decode()
    assert "Traceback" not in err and "[config]" not in err
    assert "Error: --scheduler needs the scheduler package (resq_scheduler), which is not installed" in err
