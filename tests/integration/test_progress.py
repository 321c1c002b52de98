"""Progress reporting: ``resq.current_job().progress(0.42, note=...)`` inside a task, read back with
``job.progress()`` from any handle, shown by ``resq job ID``, published as the ``progress`` event; only a
running job's report is written, bad fractions raise ``ConfigError``, reports are throttled, and eager
mode keeps them too."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest
import redis

import resq
from resq import ConfigError, Progress
from resq.broker.keys import Keys
from resq.codec import decode_event, unpack
from resq.testing import drain, eager
from tests.apps import progressapp as progress_module
from tests.conftest import RunWorker
from tests.helpers import event_subscribers, follow_events, read_log, wait_for

APP = "tests.apps.progressapp:app"
K = Keys("resq")
QUEUE = progress_module.QUEUE


@pytest.fixture
def progressapp(redis_url: str) -> Iterator[ModuleType]:
    """``tests.apps.progressapp`` bound to this test's database."""
    progress_module.bind(redis_url)
    yield progress_module
    progress_module.app.broker.close()


def _stored(client: redis.Redis, job_id: str) -> Any:
    raw = client.hget(K.job(QUEUE, job_id), "progress")
    return None if raw is None else unpack(raw)


def test_a_running_job_reports_progress_that_any_handle_reads_the_cli_shows_and_followers_see(
    progressapp: ModuleType, redis_url: str, redis_client: redis.Redis, run_worker: RunWorker, cli: Any
) -> None:
    follower = follow_events(redis_url, redis_client, "--json", "--status", "progress", "--count", "2")
    try:
        job = progressapp.pages.delay()
        assert job.progress() is None  # queued: nothing reported yet
        worker = run_worker(APP, "-q", QUEUE, "-c", "1")
        handle = progressapp.app.job(job.id)  # a handle from the id alone, as another process has
        found = wait_for(handle.progress, timeout=30, message=f"progress of {job.id}\n{read_log(worker)}")
        assert isinstance(found, Progress) and found.fraction == 0.42 and found.note == "page 3 of 7"
        assert found.at.tzinfo is not None and abs(datetime.now(UTC) - found.at) < timedelta(minutes=1)
        assert handle.status() == "running" and job.progress() == found

        stored = _stored(redis_client, job.id)
        assert stored == {"fraction": 0.42, "note": "page 3 of 7", "at_ms": stored["at_ms"]}
        history = [e["event"] for e in handle.info()["history"]]
        assert "progress" not in history and history == ["enqueued", "started"]  # not in the history

        with pytest.raises(ConfigError, match=r"fraction from 0\.0 to 1\.0") as bad:
            handle.progress(1.5)
        assert "\n" not in str(bad.value) and "e.g. job.progress(3 / 7" in str(bad.value)  # one line, a hint
        assert handle.progress() == found  # nothing written

        shown = cli("job", job.id)
        assert shown.exit_code == 0, shown.output
        line = next(line for line in shown.output.splitlines() if line.startswith("progress"))
        assert re.fullmatch(r"progress +42%  page 3 of 7  \(\d+(ms|s) ago\)", line.rstrip()), line
        as_json = json.loads(cli("job", job.id, "--json").output)["progress"]
        assert as_json["fraction"] == 0.42 and as_json["note"] == "page 3 of 7"
        assert datetime.fromisoformat(as_json["at"]) == found.at

        redis_client.rpush(progressapp.GATE, "go")
        assert job.result(timeout=30) == "opened"
        final = job.progress()
        assert final is not None and (final.fraction, final.note) == (1.0, "done")  # kept after the end
        assert final.at >= found.at

        out, err = follower.communicate(timeout=30)
        assert follower.returncode == 0, err
        events = [json.loads(line) for line in out.splitlines()]
        assert [(e["event"], e["job_id"], e["fraction"], e["note"]) for e in events] == [
            ("progress", job.id, 0.42, "page 3 of 7"),
            ("progress", job.id, 1, "done"),
        ]
        assert events[0]["task"] == "progress.pages" and events[0]["queue"] == QUEUE and events[0]["attempt"] == 1
        assert events[0]["at_ms"] == stored["at_ms"]
    finally:
        if follower.poll() is None:
            follower.kill()
        follower.wait(timeout=10)


@pytest.mark.parametrize(
    ("fraction", "note"),
    [(1.5, None), (-0.1, None), (math.nan, None), (math.inf, None), (True, None), (False, None), ("0.5", None),
     (None, "a note without a fraction"), (0.5, 42)],
)  # fmt: skip
def test_a_bad_report_raises_config_error_in_the_running_task_and_writes_nothing(
    progressapp: ModuleType, redis_client: redis.Redis, fraction: Any, note: Any
) -> None:
    job = progressapp.refused.delay(fraction, note)
    assert drain(progressapp.app, [QUEUE]) == 1
    message = job.result(timeout=5)
    assert message != "accepted" and "\n" not in message and "e.g. " in message, message  # one line, a hint
    assert ("takes a string or None" if note == 42 else "from 0.0 to 1.0") in message
    assert job.progress() is None and redis_client.hexists(K.job(QUEUE, job.id), "progress") == 0


def test_a_good_report_from_the_same_task_is_written(progressapp: ModuleType) -> None:
    job = progressapp.refused.delay(1, "whole")  # an int is a number too
    assert drain(progressapp.app, [QUEUE]) == 1
    assert job.result(timeout=5) == "accepted"
    found = job.progress()
    assert found is not None and found.fraction == 1.0 and isinstance(found.fraction, float)


def test_a_long_note_is_cut_to_200_characters(progressapp: ModuleType) -> None:
    with pytest.raises(ConfigError, match=r"from 0\.0 to 1\.0"):
        progressapp.app.job("0" * 22).progress(2)  # checked before anything is looked up
    job = progressapp.once.delay(0.25, "x" * 500)
    assert drain(progressapp.app, [QUEUE]) == 1
    found = job.progress()
    assert found is not None and found.fraction == 0.25
    assert found.note is not None and len(found.note) == 200 and found.note.endswith("…")


def test_writing_for_a_job_that_is_not_running_does_nothing(progressapp: ModuleType, redis_client: redis.Redis) -> None:
    queued = progressapp.once.delay(0.3, "in the task")
    assert queued.progress(0.9, note="from outside") is None
    assert queued.progress() is None and redis_client.hexists(K.job(QUEUE, queued.id), "progress") == 0
    assert drain(progressapp.app, [QUEUE]) == 1
    assert queued.status() == "succeeded"
    late = progressapp.app.job(queued.id)
    late.progress(0.9, note="after the end")
    found = late.progress()
    assert found is not None and (found.fraction, found.note) == (0.3, "in the task")  # the task's, untouched
    assert _stored(redis_client, queued.id)["note"] == "in the task"


def test_a_tight_loop_is_throttled_but_a_new_note_and_the_end_are_written(
    progressapp: ModuleType, redis_client: redis.Redis
) -> None:
    subscription = progressapp.app.broker.admin.events()
    assert subscription.message() is None  # subscribes
    wait_for(lambda: event_subscribers(redis_client) == 1, timeout=5, message="subscribed")
    calls = 2000
    job = progressapp.tight.delay(calls)
    assert drain(progressapp.app, [QUEUE]) == 1
    elapsed = float(job.result(timeout=5)["elapsed_s"])
    seen = []
    while (raw := subscription.message(0.5)) is not None:
        event = decode_event(raw)
        if event["event"] == "progress":
            seen.append(event)
    subscription.close()
    looping = [e for e in seen if e["note"] == "looping"]
    assert 1 <= len(looping) <= 1 + elapsed / 0.1 + 1, (len(looping), elapsed)  # one write per 0.1 s at most
    assert len(looping) < calls
    assert [(e["fraction"], e["note"]) for e in seen[len(looping) :]] == [(0.5, "new note"), (1, "new note")]
    found = job.progress()
    assert found is not None and (found.fraction, found.note) == (1.0, "new note")


def test_eager_mode_records_progress_in_memory(progressapp: ModuleType, redis_client: redis.Redis) -> None:
    with eager(progressapp.app) as runner:
        job = progressapp.once.delay(0.75, "eager")
        assert job.status() == "succeeded"
        found = job.progress()
        assert isinstance(found, resq.Progress) and (found.fraction, found.note) == (0.75, "eager")
        assert progressapp.app.job(job.id).progress() == found
        job.progress(0.1, note="finished: ignored")
        assert job.progress() == found
        assert job.info()["progress"] == {"fraction": 0.75, "note": "eager", "at": found.at}
        assert "progress" not in [e["event"] for e in job.info()["history"]]
        assert len(runner.jobs) == 1
    assert redis_client.dbsize() == 0  # eager mode never touched Redis


def test_resq_job_shows_a_finished_jobs_last_progress_and_none_when_there_is_none(
    progressapp: ModuleType, cli: Any
) -> None:
    reported = progressapp.once.delay(0.999, "almost")
    silent = progressapp.pages.apply_async(kwargs={"wait_s": 0.01})
    job_silent = progressapp.app.job(silent.id)
    text = cli("job", reported.id).output
    assert not any(line.startswith("progress") for line in text.splitlines())  # queued: no report yet
    assert json.loads(cli("job", reported.id, "--json").output)["progress"] is None
    drain(progressapp.app, [QUEUE])
    lines = cli("job", reported.id).output.splitlines()
    line = next(line for line in lines if line.startswith("progress"))
    assert re.fullmatch(r"progress +99%  almost  \(\d+(ms|s) ago\)", line.rstrip()), line  # 99.9% is not done
    assert lines.index(line) == lines.index(next(x for x in lines if x.startswith("attempts"))) + 1
    assert job_silent.result(timeout=5) == "timed out"
    assert re.search(r"^progress +100%  done  \(\d+(ms|s) ago\)$", cli("job", silent.id).output, re.M)
