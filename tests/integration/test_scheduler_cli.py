"""``resq scheduled …`` and ``resq cron …`` through click's CliRunner, and once as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import ModuleType

import pytest
import redis
from click.testing import CliRunner, Result

from resq.broker.keys import Keys
from resq.cli import main
from tests.apps import sched as sched_module
from tests.conftest import REPO_ROOT

K = Keys("resq")
APP = "tests.apps.sched:app"
PERIODIC_APP = "tests.apps.sched:periodic_app"


@pytest.fixture
def sched(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    sched_module.bind(redis_url)
    monkeypatch.setenv("RESQ_REDIS_URL", redis_url)
    yield sched_module
    sched_module.app.periodic_entries.pop("nightly", None)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.mark.cluster
def test_scheduled_list_remove_and_run_now(sched: ModuleType, redis_client: redis.Redis) -> None:
    later = sched.noop.enqueue_in(3600, "a")
    sooner = sched.noop.enqueue_at(datetime.now(UTC) + timedelta(minutes=5), "b")
    gone = sched.noop.enqueue_in(7200)

    table = invoke("scheduled", "list", "-A", APP)
    assert table.exit_code == 0
    lines = table.output.splitlines()
    assert lines[0].split() == ["ID", "QUEUE", "TASK", "STATUS", "ATTEMPT", "DUE", "(UTC)", "IN"]
    assert [line.split()[0] for line in lines[1:]] == [sooner.id, later.id, gone.id]

    listed = json.loads(invoke("scheduled", "list", "-A", APP, "--json", "--limit", "2").output)
    assert [(row["id"], row["task"], row["status"]) for row in listed] == [
        (sooner.id, "sched.noop", "scheduled"),
        (later.id, "sched.noop", "scheduled"),
    ]

    assert invoke("scheduled", "remove", "-A", APP, gone.id).output.strip() == f"{gone.id}: cancelled"
    assert gone.status() == "cancelled"
    assert invoke("scheduled", "run-now", "-A", APP, later.id).exit_code == 0
    assert later.status() == "queued"
    assert redis_client.zrange(K.scheduled("default"), 0, -1) == [sooner.id.encode()]

    again = invoke("scheduled", "run-now", "-A", APP, later.id)
    assert again.exit_code == 1
    assert "not scheduled" in again.output
    assert invoke("scheduled", "remove", "-A", APP, "no-such-id").exit_code == 1


@pytest.mark.cluster
def test_cron_list_run_pause_resume(sched: ModuleType, redis_client: redis.Redis) -> None:
    sched.app.add_periodic("sched.noop", cron="30 2 * * *", tz="Europe/Paris", name="nightly")

    table = invoke("cron", "list", "-A", APP)
    assert table.exit_code == 0
    assert "nightly" in table.output and "30 2 * * * (Europe/Paris)" in table.output and "never" in table.output

    rows = json.loads(invoke("cron", "list", "-A", APP, "--json").output)
    (row,) = rows
    assert (row["name"], row["state"], row["last_fire"], row["source"]) == ("nightly", "active", None, "app")
    fires = [datetime.fromisoformat(t) for t in row["next_fires"]]
    assert len(fires) == 3
    assert all((t.hour, t.minute) in {(2, 30), (3, 0)} for t in fires)  # local time (3:00 on a spring-forward day)
    assert all(t.utcoffset() in {timedelta(hours=1), timedelta(hours=2)} for t in fires)

    ran = invoke("cron", "run", "-A", APP, "nightly")
    assert ran.exit_code == 0
    job_id = ran.output.split()[-1]
    assert sched.app.job(job_id).status() == "queued"

    assert invoke("cron", "pause", "-A", APP, "nightly").output.strip() == "nightly: paused"
    assert redis_client.sismember(K.cron_paused, "nightly")
    assert json.loads(invoke("cron", "list", "-A", APP, "--json").output)[0]["state"] == "paused"
    assert invoke("cron", "resume", "-A", APP, "nightly").output.strip() == "nightly: resumed"
    assert invoke("cron", "resume", "-A", APP, "nightly").output.strip() == "nightly: already resumed"

    unknown = invoke("cron", "pause", "-A", APP, "nope")
    assert unknown.exit_code == 1
    assert "no periodic entry 'nope'" in unknown.output


def test_cron_list_as_a_subprocess_shows_code_entries_and_last_fire(sched: ModuleType, redis_url: str) -> None:
    from resq_scheduler import Scheduler

    on_a_tick = datetime.now(UTC).replace(microsecond=0)
    assert Scheduler(sched.periodic_app).tick(on_a_tick).fired  # the every=1 entry now has a last fire
    result = subprocess.run(
        [sys.executable, "-m", "resq", "cron", "list", "-A", PERIODIC_APP, "--json"],
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT), RESQ_REDIS_URL=redis_url),
        cwd=str(REPO_ROOT),
        capture_output=True,
        timeout=60,
        check=True,
    )
    (row,) = json.loads(result.stdout)
    assert (row["name"], row["schedule"], row["source"]) == ("sched.every_second", "every 1s", "app")
    assert row["last_fire"] is not None
    assert len(row["next_fires"]) == 3
