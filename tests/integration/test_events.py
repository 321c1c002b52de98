"""``resq events``: a subprocess follows the lifecycle events that workers publish."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
import redis

from tests.conftest import RunWorker
from tests.helpers import burst, follow_events

APP = "tests.apps.obs:app"


@pytest.fixture
def follow(redis_url: str, redis_client: redis.Redis) -> Iterator[Any]:
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        proc = follow_events(redis_url, redis_client, *args)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def finish(proc: subprocess.Popen[str]) -> list[str]:
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return out.splitlines()


@pytest.mark.cluster
def test_events_json_sees_a_job_processed_by_a_worker(obs: ModuleType, run_worker: RunWorker, follow: Any) -> None:
    proc = follow("--json", "--count", "3")
    job = obs.add.delay(1, 2)
    burst(run_worker, APP)
    events = [json.loads(line) for line in finish(proc)]
    assert [e["event"] for e in events] == ["enqueued", "started", "succeeded"]
    assert {e["job_id"] for e in events} == {job.id}
    assert {e["task"] for e in events} == {"obs.add"} and {e["queue"] for e in events} == {"default"}
    assert events[1]["attempt"] == 1 and events[1]["worker"]
    assert isinstance(events[2]["duration_ms"], int)


def test_events_filters(obs: ModuleType, run_worker: RunWorker, follow: Any) -> None:
    proc = follow("--json", "--count", "2", "--status", "failed,dead", "--task", "obs.fail")
    obs.add.delay(1, 2)
    job = obs.fail.delay("bad")
    burst(run_worker, APP)
    events = [json.loads(line) for line in finish(proc)]
    assert [(e["event"], e["job_id"]) for e in events] == [("failed", job.id), ("dead", job.id)]
    assert events[0]["error"] == "ValueError: bad"


@pytest.mark.cluster
def test_events_human_lines_and_queue_filter(obs: ModuleType, follow: Any) -> None:
    proc = follow("--count", "1", "--queue", "mail")
    obs.add.delay(1, 2)
    job = obs.add.apply_async((1, 2), queue="mail")
    lines = finish(proc)
    assert len(lines) == 1
    assert lines[0].split()[2:6] == ["enqueued", job.id, "obs.add", "mail"]  # after "YYYY-MM-DD HH:MM:SS"
