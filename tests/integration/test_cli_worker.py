"""``resq worker`` from the command line: finding the app, burst mode, concurrency, JSON logs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import REPO_ROOT, RunWorker
from tests.helpers import burst, json_lines, read_log

APP = "tests.apps.core:app"


def test_burst_on_an_empty_queue_exits_0(run_worker: RunWorker) -> None:
    burst(run_worker, APP)


def test_app_from_resq_app_env(core: ModuleType, run_worker: RunWorker) -> None:
    job = core.add.delay(1, 2)
    burst(run_worker, APP)  # the fixture passes the app in RESQ_APP only
    assert job.result() == 3


def test_app_from_resq_app_env_without_attribute(core: ModuleType, run_worker: RunWorker) -> None:
    job = core.add.delay(2, 2)
    burst(run_worker, "tests.apps.core")  # attr defaults to "app"
    assert job.result() == 4


def test_app_option_wins_over_the_environment(core: ModuleType, run_worker: RunWorker) -> None:
    job = core.add.delay(3, 4)
    burst(run_worker, "no_such_module_anywhere:app", "-A", APP)
    assert job.result() == 7


def test_unimportable_app_is_a_usage_error(run_worker: RunWorker) -> None:
    proc = run_worker("no_such_module_anywhere:app", "--burst")
    assert proc.wait(timeout=30) == 2
    assert "no_such_module_anywhere" in read_log(proc)


def test_attribute_that_is_not_an_app_is_a_usage_error(run_worker: RunWorker) -> None:
    proc = run_worker("tests.apps.core:add", "--burst")
    assert proc.wait(timeout=30) == 2
    assert "not a resq app" in read_log(proc)


def test_bad_queue_name_is_a_usage_error(run_worker: RunWorker) -> None:
    proc = run_worker(APP, "-q", "good,bad:name", "--burst")
    assert proc.wait(timeout=30) == 2
    assert "invalid queue name" in read_log(proc)


def test_console_script_with_resq_app(core: ModuleType, redis_url: str, tmp_path: Path) -> None:
    job = core.add.delay(5, 5)
    script = Path(sys.executable).parent / "resq"
    env = {
        **os.environ,
        "RESQ_APP": APP,
        "RESQ_REDIS_URL": redis_url,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    done = subprocess.run(
        [str(script), "worker", "-q", "default", "--burst"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
        start_new_session=True,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert job.result() == 10


def test_current_directory_is_importable(core: ModuleType, redis_url: str, tmp_path: Path) -> None:
    (tmp_path / "cwdapp.py").write_text(
        "from resq import Resq\napp = Resq()\n\n@app.task(name='cwd.mul')\ndef mul(a, b):\n    return a * b\n"
    )
    from resq import Resq

    producer = Resq(redis_url)
    mul = producer.task(name="cwd.mul")(lambda a, b: None)
    job = mul.delay(6, 7)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(RESQ_REDIS_URL=redis_url)
    done = subprocess.run(
        [sys.executable, "-m", "resq", "worker", "-A", "cwdapp", "--burst"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
        start_new_session=True,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert job.result() == 42


def test_json_log_has_a_succeeded_event_with_job_id_and_duration(core: ModuleType, run_worker: RunWorker) -> None:
    job = core.add.delay(1, 1)
    failing = core.fail_with.delay("logged")
    log = read_log(burst(run_worker, APP, "--log-format", "json"))
    events = json_lines(log)
    assert events, log
    succeeded = [e for e in events if e.get("event") == "succeeded" and e.get("job_id") == job.id]
    assert len(succeeded) == 1, log
    line = succeeded[0]
    assert isinstance(line["duration_ms"], int)
    assert line["task"] == "tests.apps.core.add"
    assert line["queue"] == "default"
    assert line["attempt"] == 1
    # one line per job that succeeds, at INFO ("started" is a DEBUG line)
    assert [e["event"] for e in events if e.get("job_id") == job.id] == ["succeeded"], log
    dead = [e for e in events if e.get("event") == "dead" and e.get("job_id") == failing.id]
    assert dead and dead[0]["task"] == "tests.apps.core.fail_with", log


def test_console_log_is_the_default(core: ModuleType, run_worker: RunWorker) -> None:
    job = core.add.delay(1, 1)
    log = read_log(burst(run_worker, APP))
    assert "succeeded" in log
    assert job.id in log
    assert not any(e.get("event") == "succeeded" for e in json_lines(log))


def test_concurrency_2_runs_jobs_in_two_processes(core: ModuleType, run_worker: RunWorker, redis_client: Any) -> None:
    # Each job waits until two distinct processes have joined: only two children can finish them.
    jobs = [core.rendezvous.delay("pids", 2) for _ in range(2)]
    proc = run_worker(APP, "-c", "2")
    pids = {job.result(timeout=20) for job in jobs}
    assert len(pids) == 2
    assert proc.pid not in pids  # children, not the supervisor
    assert {int(p) for p in redis_client.smembers("pids")} == pids


def test_worker_help_lists_the_options() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "resq", "worker", "--help"], capture_output=True, timeout=60, cwd=REPO_ROOT
    )
    assert done.returncode == 0
    text = done.stdout.decode()
    for option in ("-A", "-q", "-c", "--burst", "--heartbeat-interval", "--log-format", "--log-level"):
        assert option in text, option


def test_log_level_and_heartbeat_interval_options(core: ModuleType, run_worker: RunWorker) -> None:
    job = core.add.delay(2, 2)
    log = read_log(burst(run_worker, APP, "--heartbeat-interval", "0.5", "--log-level", "WARNING"))
    assert job.result() == 4
    assert "succeeded" not in log  # info events are below WARNING


@pytest.mark.parametrize(
    "args",
    [["--log-format", "xml"], ["--log-level", "LOUD"], ["-c", "0"], ["--heartbeat-interval", "0"]],
    ids=lambda a: " ".join(a),
)
def test_bad_worker_options_are_usage_errors(run_worker: RunWorker, args: list[str]) -> None:
    proc = run_worker(APP, "--burst", *args)
    assert proc.wait(timeout=30) == 2, read_log(proc)


def test_worker_refuses_to_start_without_an_app_and_warns_of_an_app_with_no_tasks(
    redis_url: str, tmp_path: Path
) -> None:
    (tmp_path / "emptyapp.py").write_text("from resq import Resq\napp = Resq()\n")
    env = {**os.environ, "RESQ_REDIS_URL": redis_url}
    env.pop("RESQ_APP", None)
    no_app = subprocess.run(
        [sys.executable, "-m", "resq", "worker", "--burst"], env=env, cwd=tmp_path, capture_output=True, timeout=60
    )
    assert no_app.returncode == 2 and b"RESQ_APP" in no_app.stderr
    no_tasks = subprocess.run(
        [sys.executable, "-m", "resq", "worker", "-A", "emptyapp", "--burst"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
    )
    assert no_tasks.returncode == 0 and b"no_tasks" in no_tasks.stderr
