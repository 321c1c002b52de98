"""The operator's commands against a real Redis: through click's CliRunner, and a few as real
subprocesses (``python -m resq …``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import ModuleType
from typing import Any

import msgpack
import pytest
import redis

from resq.ops import Inspector
from tests.conftest import REPO_ROOT, RunWorker
from tests.helpers import burst, read_log, wait_for

APP = "tests.apps.obs:app"


def resq_process(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RESQ_REDIS_URL": redis_url, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("RESQ_APP", None)
    return subprocess.run(
        [sys.executable, "-m", "resq", *args], env=env, cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=60
    )


def row(text: str, first: str) -> list[str]:
    """The cells of the table line whose first cell is ``first``."""
    for line in text.splitlines():
        cells = line.split()
        if cells and cells[0] == first:
            return cells
    raise AssertionError(f"no line starting with {first!r} in:\n{text}")


def make_dead(obs: ModuleType, run_worker: RunWorker, n: int = 1) -> list[str]:
    jobs = [obs.fail.delay(f"boom {i}") for i in range(n)]
    burst(run_worker, APP)
    assert all(job.status() == "dead" for job in jobs)
    return [job.id for job in jobs]


# -- stats, queues -----------------------------------------------------------------------------------


def test_stats_as_a_subprocess(obs: ModuleType, run_worker: RunWorker, redis_url: str) -> None:
    obs.add.delay(1, 2)
    obs.add.delay(3, 4)
    obs.fail.delay()
    burst(run_worker, APP)
    obs.add.delay(5, 6)  # waits: no worker runs now
    done = resq_process(redis_url, "stats")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert row(out, "processed")[1:] == ["3", "3"]
    assert row(out, "failed")[1:] == ["1", "1"]
    assert row(out, "dead")[1:] == ["1", "1"]
    queue = row(out, "default")
    assert queue[1:3] == ["1", "0"]  # waiting, running
    assert queue[4:7] == ["0", "1", "0"]  # scheduled, dead, workers
    assert "! no worker" in out
    assert "workers: 0 live" in out


@pytest.mark.cluster
def test_stats_json_and_days(obs: ModuleType, run_worker: RunWorker, cli: Any) -> None:
    obs.add.delay(1, 1)
    burst(run_worker, APP)
    obs.add.enqueue_in(3600, 1, 1)
    result = cli("stats", "--json", "--days", "3")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["today"]["processed"] == 1 and data["total"]["processed"] == 1
    assert data["scheduled"] == 1 and data["dead"] == 0 and data["workers"] == 0
    assert len(data["days"]) == 3 and data["days"][0]["processed"] == 1
    assert data["queues"][0]["name"] == "default" and data["queues"][0]["served"] is False
    text = cli("stats", "--days", "2").output
    assert "DAY (UTC)" in text


def test_queues_shows_waiting_and_oldest(obs: ModuleType, cli: Any) -> None:
    obs.add.delay(1, 1)
    obs.add.apply_async((1, 2), queue="other")
    data = json.loads(cli("queues", "--json").output)
    by_name = {q["name"]: q for q in data}
    assert by_name["default"]["waiting"] == 1 and by_name["other"]["waiting"] == 1
    assert by_name["default"]["oldest_age_s"] is not None
    text = cli("queues").output
    assert row(text, "other")[1] == "1"
    with_app = json.loads(cli("queues", "-A", APP, "--json").output)
    assert {q["name"] for q in with_app} == {"default", "other"}
    # given on the command line, --url overrides the app's own url (nothing listens there: exit 1)
    assert cli("queues", "-A", APP, "--url", "redis://127.0.0.1:1/0").exit_code == 1
    assert cli("queues", "-A", "no.such.module").exit_code == 2


@pytest.mark.cluster
def test_empty_namespace(cli: Any) -> None:
    assert "no queues yet" in cli("stats").output
    assert cli("dead", "list").output.strip() == "no dead jobs"
    assert cli("workers").output.strip() == "no live workers"


# -- job -----------------------------------------------------------------------------------------------


@pytest.mark.cluster
def test_job_shows_record_and_history(obs: ModuleType, run_worker: RunWorker, cli: Any) -> None:
    job = obs.add.delay(2, 3)
    burst(run_worker, APP)
    result = cli("job", job.id)
    assert result.exit_code == 0
    out = result.output
    assert row(out, "status")[1] == "succeeded"
    assert row(out, "task")[1] == "obs.add"
    assert row(out, "args")[1:] == ["[2,", "3]"]
    events = [line.split()[2] for line in out.split("history (UTC):")[1].splitlines()[2:]]
    assert events == ["enqueued", "started", "succeeded"]
    data = json.loads(cli("job", job.id, "--json").output)
    assert data["status"] == "succeeded" and [e["event"] for e in data["history"]] == events


def test_job_unknown_is_exit_1(cli: Any) -> None:
    result = cli("job", "nope")
    assert result.exit_code == 1
    assert "no job with id 'nope'" in result.output


# -- dead ------------------------------------------------------------------------------------------------


@pytest.mark.cluster
def test_dead_list_and_show(obs: ModuleType, run_worker: RunWorker, cli: Any) -> None:
    ids = make_dead(obs, run_worker, 3)
    out = cli("dead", "list").output
    assert [line.split()[0] for line in out.splitlines()[1:]] == list(reversed(ids))  # newest first
    assert row(out, ids[0])[1:3] == ["default", "obs.fail"]
    assert "ValueError: boom 0" in out
    limited = cli("dead", "list", "--limit", "2").output
    assert "(2 of 3 shown" in limited
    data = json.loads(cli("dead", "list", "--json").output)
    assert data[0]["id"] == ids[-1] and data[0]["error"] == "ValueError: boom 2" and data[0]["died"]
    shown = cli("dead", "show", ids[0]).output
    assert row(shown, "status")[1] == "dead"
    assert "Traceback (most recent call last)" in shown and "ValueError: boom 0" in shown
    assert cli("dead", "show", "nope").exit_code == 1


def test_dead_retry_as_a_subprocess_requeues_and_a_worker_runs_it(
    obs: ModuleType, run_worker: RunWorker, redis_url: str, redis_client: redis.Redis
) -> None:
    job = obs.needs_fix.delay()
    burst(run_worker, APP)
    assert job.status() == "dead"
    redis_client.set(obs.FIXED, 1)
    done = resq_process(redis_url, "dead", "retry", job.id)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"requeued {job.id} on default"
    assert job.status() == "queued"
    burst(run_worker, APP)
    assert job.result(timeout=10).startswith("fixed in")
    assert [e["event"] for e in job.info()["history"]][-3:] == ["enqueued", "started", "succeeded"]
    again = resq_process(redis_url, "dead", "retry", job.id)
    assert again.returncode == 1 and "no dead job" in again.stderr


def test_dead_retry_usage(cli: Any) -> None:
    assert cli("dead", "retry").exit_code == 2
    assert cli("dead", "retry", "x", "--all").exit_code == 2


def test_dead_retry_all_in_batches(obs: ModuleType, run_worker: RunWorker, redis_client: redis.Redis, cli: Any) -> None:
    # 2,500 dead jobs (more than two batches): jobs of a task no worker knows die on their first fetch
    inspector = Inspector(obs.app)
    ids = [inspector.enqueue("no.such.task", [i])[0] for i in range(2500)]
    burst(run_worker, APP, "--prefetch", "100", "-c", "2")
    assert inspector.dead_count() == 2500
    result = cli("dead", "retry", "--all", "--json")
    assert result.exit_code == 0
    assert json.loads(result.output.splitlines()[-1]) == {"requeued": 2500}
    assert inspector.dead_count() == 0
    assert redis_client.xlen(obs.app.broker.keys.queue("default")) == 2500
    assert obs.app.job(ids[123]).status() == "queued"
    assert [e["event"] for e in obs.app.job(ids[7]).info()["history"]][-1] == "enqueued"


@pytest.mark.cluster
def test_dead_purge(obs: ModuleType, run_worker: RunWorker, redis_client: redis.Redis, cli: Any) -> None:
    ids = make_dead(obs, run_worker, 2)
    assert cli("dead", "purge", "--older-than", "1h", "-y").output.strip().endswith("purged 0 dead jobs")
    keys = obs.app.broker.keys
    assert redis_client.exists(keys.job("default", ids[0])) == 1
    result = cli("dead", "purge", "--json", "--yes")
    assert json.loads(result.output.splitlines()[-1]) == {"purged": 2}
    assert redis_client.exists(keys.job("default", ids[0]), keys.done("default", ids[0])) == 0
    assert cli("dead", "purge", "--older-than", "7 days").exit_code == 2


# -- queue clear ---------------------------------------------------------------------------------------


@pytest.mark.cluster
def test_queue_clear_asks_then_deletes(obs: ModuleType, redis_client: redis.Redis, cli: Any) -> None:
    jobs = [obs.add.apply_async((i, i), queue="bulk") for i in range(3)]
    later = obs.add.apply_async((9, 9), queue="bulk", delay=3600)
    kept = obs.add.delay(1, 1)
    refused = cli("queue", "clear", "bulk")  # no terminal to ask on, no -y: refused
    assert refused.exit_code == 2 and "delete the 4 jobs" in refused.output and "pass -y/--yes" in refused.output
    assert jobs[0].status() == "queued"
    result = cli("queue", "clear", "bulk", "--yes")
    assert result.exit_code == 0 and result.output.strip() == "cleared bulk: 4 jobs"
    keys = obs.app.broker.keys
    assert redis_client.xlen(keys.queue("bulk")) == 0 and redis_client.exists(keys.scheduled("bulk")) == 0
    assert [g["name"] for g in redis_client.xinfo_groups(keys.queue("bulk"))] == [b"resq"]  # workers carry on
    assert redis_client.exists(*(keys.job("bulk", j.id) for j in [*jobs, later])) == 0
    assert kept.status() == "queued"
    assert cli("queue", "clear", "nope", "--yes").exit_code == 1


# -- enqueue ---------------------------------------------------------------------------------------------


def test_enqueue_by_name_then_a_worker_runs_it(obs: ModuleType, run_worker: RunWorker, cli: Any) -> None:
    result = cli("enqueue", "obs.add", "--args", "[2, 3]", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["queue"] == "default" and data["status"] == "queued"
    burst(run_worker, APP)
    assert obs.app.job(data["id"]).result(timeout=10) == 5


@pytest.mark.cluster
def test_enqueue_options(obs: ModuleType, cli: Any) -> None:
    later = json.loads(cli("enqueue", "obs.add", "--kwargs", '{"a": 1, "b": 2}', "--in", "5m", "--json").output)
    assert later["status"] == "scheduled"
    info = obs.app.job(later["id"]).info()
    assert info["kwargs"] == {"a": 1, "b": 2} and info["due_at"] is not None
    at = json.loads(
        cli("enqueue", "x.unknown", "-q", "elsewhere", "--at", "2100-01-01T00:00:00+00:00", "--json").output
    )
    assert at["queue"] == "elsewhere" and at["status"] == "scheduled"
    assert obs.app.job(at["id"]).info()["due_at"].year == 2100
    text = cli("enqueue", "x.unknown", "--id", "my-id").output
    assert text.strip() == "enqueued my-id (x.unknown) on default: queued"


@pytest.mark.parametrize(
    "args",
    [
        ["--args", "not json"],
        ["--args", '{"a": 1}'],
        ["--kwargs", "[1]"],
        ["--in", "soon"],
        ["--at", "tomorrow"],
        ["--in", "5", "--at", "2100-01-01T00:00:00"],
        ["-q", "bad:name"],
    ],
)
def test_enqueue_usage_errors(cli: Any, args: list[str]) -> None:
    assert cli("enqueue", "obs.add", *args).exit_code == 2


# -- workers ---------------------------------------------------------------------------------------------


@pytest.mark.cluster
def test_workers_list_pause_and_stop(run_worker: RunWorker, redis_client: redis.Redis, cli: Any) -> None:
    proc = run_worker(APP, "-c", "2", "-q", "default,other")
    found = wait_for(
        lambda: len(json.loads(cli("workers", "--json").output)) == 2 and json.loads(cli("workers", "--json").output),
        message="two live workers",
    )
    assert {w["supervisor"] for w in found} == {found[0]["supervisor"]}
    assert all(w["queues"] == ["default", "other"] and w["pid"] != proc.pid for w in found)
    text = cli("workers").output
    assert row(text, found[0]["id"])[1] == found[0]["supervisor"]
    stats = json.loads(cli("stats", "--json").output)
    assert stats["workers"] == 2
    paused = cli("workers", "pause", "--all")
    assert paused.exit_code == 0 and "pause sent to all workers" in paused.output
    state = msgpack.unpackb(redis_client.hget("{resq}:control:state", "*"))
    assert state["cmd"] == "pause" and isinstance(state["at_ms"], int)
    assert [w["state"] for w in json.loads(cli("workers", "--json").output)] == ["paused", "paused"]
    assert json.loads(cli("stats", "--json").output)["paused"] == 2
    assert cli("workers", "resume", "--all").exit_code == 0
    assert json.loads(cli("stats", "--json").output)["paused"] == 0
    assert cli("workers", "stop", "nope").exit_code == 1
    assert cli("workers", "stop").exit_code == 2
    stopped = cli("workers", "stop", found[0]["supervisor"], "--json")
    assert json.loads(stopped.output)["target"] == found[0]["supervisor"]
    assert proc.wait(timeout=30) == 0, read_log(proc)
    assert msgpack.unpackb(redis_client.hget("{resq}:control:state", found[0]["supervisor"]))["cmd"] == "stop"
