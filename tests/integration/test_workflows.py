"""Chords, batches and ``depends_on`` (``docs/workflows.md``): a join's callbacks are released, or ended by
its policy, by the script that records the end of the member that decides it, exactly once. With real
Redis, resq's consumer in this process, and real workers (one scenario SIGKILLs one mid-chord)."""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

import pytest
import redis

import resq
import resq.broker.handoff
from resq import BrokerUnavailable, ConfigError, CycleError, JobFailed, JobStatus
from resq.canvas import GroupProgress
from resq.context import BatchScope, _batch
from resq.maintenance import Maintenance
from tests.apps import workflowapp as wf
from tests.conftest import RunWorker
from tests.integration.test_chains import APP, client, drain

__all__ = ["client"]  # the chains' fixture: the workflow app bound to this test's database


def reports(client: redis.Redis, role: str) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in client.lrange(f"wftest:report:{role}", 0, -1)]


# -- chords -------------------------------------------------------------------------------------------


@pytest.mark.cluster
def test_a_chord_callback_gets_every_result_in_order_once(client: redis.Redis) -> None:
    handle = resq.chord((wf.square.s(n) for n in range(6)), wf.collect.s("squares")).delay()
    assert handle.callback.status() == JobStatus.DEFERRED  # stored at once, queued when the members end
    assert handle.progress() == GroupProgress(0, 0, 6)
    drain()
    assert handle.result(timeout=5) == "squares:0,1,4,9,16,25"
    assert handle.results(timeout=0) == [0, 1, 4, 9, 16, 25]
    assert client.lrange("wftest:collect", 0, -1) == [b"squares"]
    status = wf.app.batch_status(handle.id)
    assert status is not None and (status.kind, status.total, status.succeeded) == ("chord", 6, 6)
    assert status.fired == ("success",)


def test_an_immutable_callback_ignores_the_results_and_the_counts(client: redis.Redis) -> None:
    handle = resq.chord([wf.square.s(2), wf.square.s(3)], wf.mark.si("chord done")).delay()
    with wf.app.batch(on_complete=wf.mark.si("batch done")):
        wf.square.delay(4)
    drain()
    assert handle.result(timeout=5) == "chord done"
    assert sorted(client.lrange("wftest:marks", 0, -1)) == [b"batch done", b"chord done"]


@pytest.mark.cluster
def test_a_hand_off_left_by_a_process_that_died_is_applied_by_the_reaper_once(
    client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    handle = resq.chord([wf.square.s(2), wf.square.s(3)], wf.collect.s("late")).delay()
    handoff = wf.app.broker.queues.handoff

    def died(handed: object, **_: object) -> None:  # the worker's process dies between an end and its hand-off
        raise BrokerUnavailable("the process died here")

    with monkeypatch.context() as patched:
        patched.setattr(handoff, "apply", died)
        drain()
    assert handle.callback.status() == JobStatus.DEFERRED  # the members ended; their joins not told yet
    assert client.hlen("{resq:default}:handoff") == 2
    Maintenance(wf.app, None).reap()
    assert client.hlen("{resq:default}:handoff") == 2  # too recent: its writer may still be applying it
    monkeypatch.setattr(resq.broker.handoff, "SWEEP_AFTER_MS", 0)
    Maintenance(wf.app, None).reap()
    assert client.hlen("{resq:default}:handoff") == 0
    assert handoff.sweep(["default"], older_than_ms=0) == 0
    drain()
    assert handle.result(timeout=5) == "late:4,9"
    assert client.lrange("wftest:collect", 0, -1) == [b"late"]


@pytest.mark.cluster
def test_a_chord_member_that_dies_ends_the_callback_without_running_it(client: redis.Redis) -> None:
    handle = resq.chord([wf.square.s(2), wf.broken.s("x"), wf.square.s(3)], wf.collect.s()).delay()
    drain()
    with pytest.raises(JobFailed) as failed:
        handle.result(timeout=5)
    assert failed.value.type == "ParentFailed"
    assert "ended dead" in failed.value.message
    assert handle.callback.status() == JobStatus.DEAD
    assert client.lrange("wftest:collect", 0, -1) == []
    assert handle.progress() == GroupProgress(3, 1, 3)


def test_a_chord_is_refused_without_members_or_with_a_callback_that_is_no_signature(client: redis.Redis) -> None:
    with pytest.raises(ConfigError, match="at least one"):
        resq.chord([], wf.collect.s())
    with pytest.raises(ConfigError, match="callback is a signature"):
        resq.chord([wf.square.s(1)], wf.collect)  # type: ignore[arg-type]


def test_a_chord_of_200_finished_by_4_processes_while_one_worker_is_killed_runs_its_callback_once(
    client: redis.Redis, run_worker: RunWorker
) -> None:
    handle = resq.chord((wf.square.s(n, 0.01) for n in range(200)), wf.collect.s("big")).delay()
    env = {"RESQ_HEARTBEAT_INTERVAL": "1"}
    first = run_worker(APP, "-q", "default,db", "-c", "2", env=env)
    second = run_worker(APP, "-q", "default,db", "-c", "2", env=env)
    try:
        deadline = time.monotonic() + 30
        while int(client.get("wftest:square") or 0) < 60 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.killpg(first.pid, signal.SIGKILL)  # the worker and its children, mid-chord
        first.wait(timeout=10)
        assert handle.result(timeout=90) == "big:" + ",".join(str(n * n) for n in range(200))
    finally:
        second.terminate()
        second.wait(timeout=30)
    assert client.lrange("wftest:collect", 0, -1) == [b"big"]  # exactly once
    runs = int(client.get("wftest:square") or 0)
    assert 200 <= runs <= 202  # at most the killed worker's two running jobs ran again


# -- batches ------------------------------------------------------------------------------------------


@pytest.mark.cluster
def test_a_batch_waits_for_its_nested_jobs_and_calls_back_once_with_its_counts(client: redis.Redis) -> None:
    with wf.app.batch(on_success=wf.report.s("success"), on_complete=wf.report.s("complete"), description="d") as b:
        wf.spawn.delay(3)  # enqueues three more while it runs: they join the batch
        wf.square.delay(4)
    opened = b.status()
    assert opened is not None and (opened.total, opened.open, opened.pending) == (2, False, 2)
    drain()
    counts = {"description": "d", "failed": 0, "id": b.id, "pending": 0, "succeeded": 5, "total": 5}
    assert reports(client, "success") == [counts]
    assert reports(client, "complete") == [counts]
    status = wf.app.batch_status(b.id)
    assert status is not None and status.complete and sorted(status.fired) == ["complete", "success"]
    assert set(status.jobs.values()) == {"succeeded"}


@pytest.mark.cluster
def test_a_batch_with_a_dead_job_completes_but_does_not_succeed(client: redis.Redis) -> None:
    with wf.app.batch(on_success=wf.report.s("success"), on_complete=wf.report.s("complete")) as b:
        wf.square.delay(1)
        dead = wf.broken.delay("y")
    drain()
    assert reports(client, "success") == []
    assert [r["failed"] for r in reports(client, "complete")] == [1]
    status = b.status()
    assert status is not None and status.jobs[dead.id] == "dead"


def test_a_batch_is_not_decided_while_its_block_runs(client: redis.Redis) -> None:
    with wf.app.batch(on_complete=wf.report.s("complete")) as b:
        wf.square.delay(1)
        drain()  # the first job ended; the block goes on
        assert reports(client, "complete") == []
        wf.square.delay(2)
    drain()
    assert [r["total"] for r in reports(client, "complete")] == [2]
    assert b.id


def test_a_chain_in_a_batch_holds_the_batch_until_its_last_step(client: redis.Redis) -> None:
    with wf.app.batch(on_complete=wf.report.s("complete")):
        handle = resq.chain(wf.fetch.s("b.c"), wf.parse.s(), wf.store.s()).delay()
    drain()
    assert handle.result(timeout=5) == "pages:b.c"
    assert [r["succeeded"] for r in reports(client, "complete")] == [3]


def test_a_job_of_a_batch_run_again_does_not_add_its_nested_jobs_twice(client: redis.Redis) -> None:
    with wf.app.batch(on_complete=wf.report.s("complete")) as b:
        parent = wf.spawn.delay(2)
    for _ in range(2):  # what its worker sets while it runs, twice (it was run again after a kill)
        token = _batch.set(BatchScope(b.id, parent.id))
        try:
            nested = wf.square.delay(7)
        finally:
            _batch.reset(token)
        assert nested.id == f"{parent.id}.1"
    status = b.status()
    assert status is not None and (status.total, sorted(status.jobs)) == (2, [parent.id, f"{parent.id}.1"])


# -- depends_on ---------------------------------------------------------------------------------------


@pytest.mark.cluster
def test_a_dependent_job_waits_for_every_parent(client: redis.Redis) -> None:
    a, b = wf.square.delay(2), wf.square.delay(3)
    child = wf.mark.apply_async(("child",), depends_on=[a, b])
    assert child.status() == JobStatus.DEFERRED
    drain()
    assert child.result(timeout=5) == "child"
    assert client.lrange("wftest:marks", 0, -1) == [b"child"]


@pytest.mark.parametrize(
    ("policy", "status", "runs"),
    [("fail", JobStatus.DEAD, []), ("cancel", JobStatus.CANCELLED, []), ("run", JobStatus.SUCCEEDED, [b"p"])],
)
@pytest.mark.cluster
def test_a_parent_that_dies_decides_by_the_policy(
    client: redis.Redis, policy: str, status: JobStatus, runs: list[bytes]
) -> None:
    good, bad = wf.square.delay(1), wf.broken.delay("z")
    child = wf.mark.apply_async(("p",), depends_on=[good, bad], on_parent_failure=policy)
    grandchild = wf.mark.apply_async(("g",), depends_on=[child])
    drain()
    assert child.status() == status
    assert client.lrange("wftest:marks", 0, -1) == [*runs, *([b"g"] if runs else [])]
    assert grandchild.status() == (JobStatus.SUCCEEDED if runs else JobStatus.DEAD)  # the default policy: fail
    if policy == "fail":
        with pytest.raises(JobFailed, match=f"parent {bad.id}"):
            child.result(timeout=1)
        assert client.zscore("{resq:default}:dead", child.id) is not None  # in the dead set: retry it there


@pytest.mark.cluster
def test_a_parent_that_ended_already_counts_at_once(client: redis.Redis) -> None:
    done, dead = wf.square.delay(5), wf.broken.delay("w")
    drain()
    assert wf.mark.apply_async(("late",), depends_on=[done]).status() == JobStatus.QUEUED
    assert wf.mark.apply_async(("never",), depends_on=[dead]).status() == JobStatus.DEAD


def test_depends_on_refuses_a_cycle_a_missing_parent_and_a_bad_policy(client: redis.Redis) -> None:
    a = wf.square.delay(1)
    b = wf.mark.apply_async(("b",), depends_on=[a])
    with pytest.raises(CycleError, match="cycle"):
        wf.mark.apply_async(("self",), depends_on=[a], job_id=a.id)
    with pytest.raises(CycleError, match="cycle"):
        wf.mark.apply_async(("a again",), depends_on=[b], job_id=a.id)
    with pytest.raises(ConfigError, match="not found"):
        wf.mark.apply_async(("x",), depends_on=["no-such-job"])
    with pytest.raises(ConfigError, match="on_parent_failure"):
        wf.mark.apply_async(("x",), depends_on=[a], on_parent_failure="ignore")
    with pytest.raises(ConfigError, match="drop delay"):
        wf.mark.apply_async(("x",), depends_on=[a], delay=5)
    assert client.lrange("wftest:marks", 0, -1) == []


@pytest.mark.cluster
def test_a_dependent_job_can_be_cancelled_while_it_waits(client: redis.Redis) -> None:
    a = wf.square.delay(1)
    child = wf.mark.apply_async(("c",), depends_on=[a])
    assert child.cancel() == JobStatus.CANCELLED
    drain()
    assert child.status() == JobStatus.CANCELLED
    assert client.lrange("wftest:marks", 0, -1) == []


# -- eager mode ---------------------------------------------------------------------------------------


def test_workflows_run_in_eager_mode() -> None:
    app = resq.Resq(eager=True)

    @app.task(name="e.double")
    def double(n: int) -> int:
        return 2 * n

    @app.task(name="e.total")
    def total(results: list[int], plus: int = 0) -> int:
        return sum(results) + plus

    seen: list[dict[str, Any]] = []

    @app.task(name="e.seen")
    def record(status: dict[str, Any]) -> None:
        seen.append(status)

    assert resq.chord((double.s(n) for n in range(4)), total.s(plus=1)).delay().result() == 13
    parent = double.delay(1)
    assert total.apply_async(([1, 2],), depends_on=[parent]).result() == 3
    with app.batch(on_complete=record.s()):
        double.delay(1)
        double.delay(2)
    assert [s["succeeded"] for s in seen] == [2]


# -- visibility ---------------------------------------------------------------------------------------


def test_resq_job_shows_parents_and_children_and_resq_batch_shows_a_batch(client: redis.Redis, cli: Any) -> None:
    a = wf.square.delay(3)
    child = wf.mark.apply_async(("c",), depends_on=[a])
    with wf.app.batch(on_complete=wf.report.s("complete"), description="nightly") as b:
        member = wf.square.delay(4)
    shown = json.loads(cli("job", a.id, "--json").output)
    assert [(e["id"], e["status"], e["via"]) for e in shown["children"]] == [(child.id, "deferred", "deps")]
    waiting = json.loads(cli("job", child.id, "--json").output)
    assert waiting["join"] == child.id
    assert [(e["id"], e["via"]) for e in waiting["parents"]] == [(a.id, "depends_on")]
    assert f"{a.id}  queued  (depends_on)" in cli("job", child.id).output
    drain()
    found = json.loads(cli("batch", b.id, "--json").output)
    assert (found["kind"], found["total"], found["succeeded"], found["complete"]) == ("batch", 1, 1, True)
    assert found["callbacks"]["complete"]["status"] == "succeeded"
    assert found["jobs"] == {member.id: "succeeded"}
    text = cli("batch", b.id).output
    assert "nightly" in text and "1: 1 succeeded, 0 failed, 0 pending" in text and "complete" in text
    missing = cli("batch", "nope")
    assert missing.exit_code == 1 and "no batch, chord or depends_on with id 'nope'" in missing.output
