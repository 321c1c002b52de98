"""Logs of task code: standard ``logging`` records inside a job carry the job's identity."""

from __future__ import annotations

from types import ModuleType

from tests.conftest import RunWorker
from tests.helpers import burst, json_lines, read_log

APP = "tests.apps.obs:app"


def test_stdlib_logging_in_a_task_carries_the_job_context(obs: ModuleType, run_worker: RunWorker) -> None:
    job = obs.chatty.delay("hello")
    proc = burst(run_worker, APP, "--log-format", "json")
    assert job.result(timeout=10) == "hello"
    lines = json_lines(read_log(proc))
    said = [line for line in lines if line.get("event") == "chatty says hello"]
    assert len(said) == 1, read_log(proc)
    assert said[0]["job_id"] == job.id
    assert said[0]["task"] == "obs.chatty"
    assert said[0]["queue"] == "default"
    assert said[0]["attempt"] == 1
    assert said[0]["logger"] == "user.code" and said[0]["level"] == "info"
    done = [line for line in lines if line.get("event") == "succeeded" and line.get("job_id") == job.id]
    assert len(done) == 1 and isinstance(done[0]["duration_ms"], int)
    outside = [line for line in lines if line.get("event") == "worker_stopped"]
    assert outside and "job_id" not in outside[0]  # the context does not leak out of the job
