"""Keys of resq's that something else overwrote with another type, under a running worker: the worker sets
each aside (renames it, value kept), logs it, and every real job completes; no child crashes, and no job
is left half-recorded (issue 11, item 2)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from types import ModuleType

import pytest
import redis

from resq.broker.keys import Keys
from tests.conftest import RunWorker
from tests.helpers import json_lines, read_log, wait_for

APP = "tests.apps.core:app"
K = Keys("resq")


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    found = redis.Redis.from_url(redis_url)
    yield found
    found.close()


@pytest.fixture
def worker(core: ModuleType, run_worker: RunWorker) -> subprocess.Popen[bytes]:
    proc = run_worker(APP, "-c", "2", "--log-format", "json")
    assert core.add.delay(1, 1).result(timeout=10) == 2  # up and serving
    return proc


def _set_aside(worker: subprocess.Popen[bytes], key: str) -> list[dict[str, object]]:
    return [e for e in json_lines(read_log(worker)) if e.get("key") == key and "set_aside" in str(e.get("event"))]


def _no_child_crashed(worker: subprocess.Popen[bytes]) -> None:
    events = [e.get("event") for e in json_lines(read_log(worker))]
    assert "child_crashed" not in events and "child_exited" not in events, read_log(worker)[-3000:]


def _aside(client: redis.Redis, key: str) -> list[bytes]:
    tag, _, rest = key.partition("}")
    return list(client.scan_iter(match=f"{tag}}}:broken:*{rest}"))


def test_a_job_record_overwritten_while_its_entry_waits_is_set_aside_and_the_entry_dead(
    core: ModuleType, worker: subprocess.Popen[bytes], client: redis.Redis
) -> None:
    client.set(K.job("default", "overwritten"), "not a hash")
    client.xadd(K.queue("default"), {"id": "overwritten"})
    assert core.add.delay(2, 3).result(timeout=10) == 5
    wait_for(lambda: client.zscore(K.dead("default"), "overwritten") is not None, message="entry set aside as dead")
    assert _set_aside(worker, K.job("default", "overwritten"))
    assert client.get(_aside(client, K.job("default", "overwritten"))[0]) == b"not a hash"  # its value kept
    _no_child_crashed(worker)


@pytest.mark.parametrize(
    ("key", "task", "args", "status"),
    [
        (K.dead("default"), "always_fails", ("boom",), "dead"),
        (K.scheduled("default"), "flaky", (), "succeeded"),
        (K.stat("processed"), "add", (1, 2), "succeeded"),
        (K.stat_by_task, "add", (1, 2), "succeeded"),
        (K.front("default"), "add", (1, 2), "succeeded"),
    ],
    ids=["dead set", "scheduled set", "counter", "counters by task", "front stream"],
)
def test_jobs_complete_past_a_key_of_the_wrong_type(
    core: ModuleType,
    worker: subprocess.Popen[bytes],
    client: redis.Redis,
    key: str,
    task: str,
    args: tuple[object, ...],
    status: str,
) -> None:
    client.delete(key)
    client.set(key, "not integer")  # a string where resq keeps a zset, a stream, a hash, or a counter
    jobs = [getattr(core, task).delay(*args) for _ in range(3)]
    wait_for(lambda: [j.status() for j in jobs] == [status] * 3, timeout=20, message=f"jobs {status}")
    # a counter is set aside when the counters travel, after the jobs' outcomes (a moment later)
    wait_for(lambda: _set_aside(worker, key), timeout=10, message=f"{key} set aside:\n{read_log(worker)[-3000:]}")
    for job in jobs:  # every record whole: a final job expires, and a dead one is listed
        assert client.pttl(K.job("default", job.id)) > 0
        if status == "dead":
            assert client.zscore(K.dead("default"), job.id) is not None
    assert core.add.delay(5, 5).result(timeout=10) == 10
    _no_child_crashed(worker)
