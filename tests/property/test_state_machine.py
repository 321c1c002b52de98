"""A stateful hypothesis test of the job state machine, driven through resq's own layer on a real Redis and
checked after every step against a model (issue 11, "Bad input").

Rules: enqueue (now, or in 1-2 h), fetch by one of three simulated workers (XREADGROUP leases; the first one
started, as a worker does, or not), start a leased job, succeed, fail and retry (due now or in an hour),
fail for good (dead), a worker's own cancellation, a producer's cancel (of a scheduled, waiting, leased,
running or final job), hand a lease back (a stopping worker), kill a worker holding leases (its registry
deadline passes), reap (two looks of the maintenance's reaper), promote (due now, in 1.5 h, in 3 h), revive
(``resq dead retry``, of a dead job or of another), and a stale outcome or start by a killed worker whose
lease was reaped and maybe re-fetched by another (fencing: nothing changes).

Invariants: every job the model knows is in exactly one place (an entry in the queue's streams, waiting or
leased by the one worker the model says, the scheduled set at its due time, the dead set, or final), the
consumer group's pending lists hold exactly the model's leases, Redis holds the status, attempt, loss count,
worker and entry the model expects, no job record is lost and none exists that the model does not know, the
cancel set holds the running jobs whose cancellation was asked for, every change of status is an edge of
the transition table of ``docs/design.md``, and the inspector counts what the model holds.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from redis.exceptions import ResponseError

from resq import JobStatus, Resq
from resq.broker import GROUP, Keys
from resq.clock import now_ms
from resq.codec import decode_envelope, pack
from resq.errors import JobCancelled, JobFailed, UnknownJob
from resq.maintenance import CONFIRM_AFTER, Maintenance
from resq.ops import Inspector
from resq.outcomes import Cancelled, Dead, Delivery, Discarded, Outcome, Retried, Succeeded

Q = "default"
#: a job that loses its worker this many times is dead (kept low so that the machine reaches it)
MAX_LOSSES = 2
#: the workers' heartbeat interval: they stay registered as alive for the whole example
WORKER_HEARTBEAT_S = 60.0
#: the reaper's: a silent worker is confirmed dead by a second look CONFIRM_AFTER of this later
REAPER_HEARTBEAT_S = 0.02
HOUR_MS = 3_600_000
#: how many simulated worker processes fetch at once (a killed one is replaced by a new id)
WORKER_SLOTS = 3
PICK = st.integers(min_value=0, max_value=63)

S = JobStatus
ACTIVE = (S.SCHEDULED, S.QUEUED, S.RUNNING, S.RETRYING)
#: the edges of docs/design.md's transition table, script by script (None: no record yet)
ALLOWED: frozenset[tuple[JobStatus | None, JobStatus]] = frozenset(
    {(None, S.QUEUED), (None, S.SCHEDULED)}  # enqueue
    | {(s, S.RUNNING) for s in (S.QUEUED, S.RETRYING, S.SCHEDULED)}  # start
    | {(S.RUNNING, S.SUCCEEDED), (S.QUEUED, S.SUCCEEDED)}  # succeed (queued: held under the worker's entry)
    | {(S.RUNNING, S.RETRYING), (S.QUEUED, S.RETRYING)}  # retry
    | {(s, S.DEAD) for s in ACTIVE}  # dead; release at max_worker_losses
    | {(S.SCHEDULED, S.QUEUED), (S.RETRYING, S.QUEUED)}  # promote, run_now
    | {(S.RUNNING, S.QUEUED)}  # release (a queued lease given back stays queued)
    | {(s, S.CANCELLED) for s in ACTIVE}  # cancel (queued, scheduled, retrying), cancelled (a worker's)
    | {(S.DEAD, S.QUEUED)}  # revive
)


def streams(keys: Keys, queue: str) -> tuple[str, ...]:
    """Every stream the jobs of ``queue`` wait in (its front stream too, where the broker has one)."""
    found = getattr(keys, "streams", None)
    return tuple(found(queue)) if found is not None else (keys.queue(queue),)


def lease_key(delivery: Delivery) -> tuple[bool, str]:
    """What names a lease: its entry id, in the front stream or the queue's own."""
    return bool(getattr(delivery, "front", False)), delivery.entry


class RawRedis:
    """The few raw reads (and the one registry write) the machine makes beside resq's layer, typed: redis-py
    types its replies as unions of what its sync and async clients return."""

    def __init__(self, url: str) -> None:
        self.client: Any = redis.Redis.from_url(url)

    def hash(self, key: str) -> dict[bytes, bytes]:
        return {bytes(k): bytes(v) for k, v in self.client.hgetall(key).items()}

    def entries(self, stream: str) -> list[tuple[str, str]]:
        """(entry, job id) of each entry of a stream."""
        return [(entry.decode(), fields[b"id"].decode()) for entry, fields in self.client.xrange(stream)]

    def pending(self, stream: str) -> list[tuple[str, str]]:
        """(entry, consumer) of each lease of a stream's consumer group (none when it has no group)."""
        try:
            rows = self.client.xpending_range(stream, GROUP, "-", "+", 10_000)
        except ResponseError:
            return []
        return [(row["message_id"].decode(), row["consumer"].decode()) for row in rows]

    def scores(self, key: str) -> dict[str, int]:
        return {k.decode(): int(v) for k, v in self.client.zrange(key, 0, -1, withscores=True)}

    def members(self, key: str) -> set[str]:
        return {m.decode() for m in self.client.smembers(key)}

    def keys(self, prefix: str) -> set[str]:
        """The names of the keys starting with ``prefix``, without it."""
        return {k.decode().removeprefix(prefix) for k in self.client.scan_iter(match=f"{prefix}*", count=1000)}

    def set_deadline(self, workers_key: str, worker: str, deadline_ms: int) -> None:
        self.client.zadd(workers_key, {worker: deadline_ms})


@dataclass
class ModelJob:
    status: JobStatus
    attempt: int = 0
    lost: int = 0
    #: due time of a scheduled or retrying job (ms)
    due_ms: int = 0
    #: its id is in the queue's cancel set (a cancellation asked for while it ran)
    cancel_flagged: bool = False


@dataclass
class Lease:
    delivery: Delivery
    worker: str
    started: bool = False

    @property
    def job_id(self) -> str:
        return str(self.delivery.job_id)


class JobMachine(RuleBasedStateMachine):
    """The model, and the rules that drive the real broker (set ``redis_url`` in a subclass)."""

    redis_url: ClassVar[str] = ""

    def __init__(self) -> None:
        super().__init__()
        self.redis = RawRedis(self.redis_url)
        self.redis.client.flushdb()
        self.app = Resq(self.redis_url, max_worker_losses=MAX_LOSSES, heartbeat_interval=WORKER_HEARTBEAT_S)
        self.reaper = Resq(self.redis_url, max_worker_losses=MAX_LOSSES, heartbeat_interval=REAPER_HEARTBEAT_S)

        @self.app.task(name="add")
        def add(x: int, y: int) -> int:
            return x + y

        self.add = add
        self.keys = self.app.broker.keys
        self.app.broker.queues.ensure_groups([Q])
        self.jobs: dict[str, ModelJob] = {}
        #: (front, entry) -> the lease: what the consumer group's pending lists must hold
        self.leases: dict[tuple[bool, str], Lease] = {}
        self.generation = 0
        self.workers = [self._new_worker(slot) for slot in range(WORKER_SLOTS)]
        #: workers killed whose leases no reaper has given back yet
        self.zombies: set[str] = set()
        #: leases given back by a reaper, still held by the killed worker that woke up late
        self.stale: list[tuple[str, Delivery]] = []
        #: each job's status as last seen in Redis, to check each change against ALLOWED
        self.seen: dict[str, JobStatus] = {}

    def teardown(self) -> None:
        self.app.broker.close()
        self.reaper.broker.close()
        self.redis.client.close()

    # -- helpers ------------------------------------------------------------------------------------

    def _new_worker(self, slot: int) -> str:
        self.generation += 1
        worker_id = f"w{slot}-{self.generation}"
        self.app.broker.workers.register(worker_id, {"host": "test", "pid": "0", "queues": Q})
        return worker_id

    def _waiting(self) -> list[str]:
        leased = {lease.job_id for lease in self.leases.values()}
        return [i for i, job in self.jobs.items() if job.status == S.QUEUED and i not in leased]

    # Picks index the model's own lists in the order it made them (dicts keep it), never an order of
    # entry or job ids: those come from the clock, and a replayed example must pick the same.

    def _leases(self, started: bool) -> list[Lease]:
        return [le for le in self.leases.values() if le.started == started]

    def _pop_lease(self, pick: int, started: bool) -> Lease:
        found = self._leases(started)
        lease = found[pick % len(found)]
        del self.leases[lease_key(lease.delivery)]
        return lease

    def _record(self, outcome: Outcome) -> None:
        self.app.broker.queues.record([outcome])

    def _settle(self, lease: Lease, status: JobStatus, due_ms: int = 0) -> None:
        """A worker's outcome for its running job was recorded."""
        job = self.jobs[lease.job_id]
        assert job.status == S.RUNNING
        job.status, job.due_ms, job.cancel_flagged = status, due_ms, False

    def _settle_cancelled(self, job: ModelJob) -> None:
        """A running job whose cancellation was asked for was given back: it ended cancelled."""
        job.status, job.due_ms, job.cancel_flagged = S.CANCELLED, 0, False

    def _hash(self, job_id: str) -> dict[bytes, bytes]:
        return self.redis.hash(self.keys.job(Q, job_id))

    # -- producers ----------------------------------------------------------------------------------

    @initialize(now=st.integers(min_value=1, max_value=4), later=st.sampled_from([[], [1], [2, 1]]))
    def some_jobs(self, now: int, later: list[int]) -> None:
        for delay_h in [0] * now + later:
            self.enqueue(delay_h)

    @rule(delay_h=st.sampled_from([0, 0, 1, 2]), count=st.integers(min_value=1, max_value=3))
    def enqueue_some(self, delay_h: int, count: int) -> None:
        for _ in range(count):
            self.enqueue(delay_h)

    def enqueue(self, delay_h: int) -> None:
        """A producer's ``.delay()`` (``delay_h`` 0) or ``.enqueue_in()``, as the app's task is called."""
        job = self.add.delay(1, 2) if delay_h == 0 else self.add.enqueue_in(delay_h * 3600, 1, 2)
        assert job.id not in self.jobs
        if delay_h == 0:
            self.jobs[job.id] = ModelJob(S.QUEUED)
        else:
            due = self.redis.scores(self.keys.scheduled(Q))[job.id]
            assert abs(due - (now_ms() + delay_h * HOUR_MS)) < 60_000
            self.jobs[job.id] = ModelJob(S.SCHEDULED, due_ms=due)

    @precondition(lambda self: bool(self.jobs))
    @rule(pick=PICK)
    def cancel(self, pick: int) -> None:
        job_id = list(self.jobs)[pick % len(self.jobs)]
        job = self.jobs[job_id]
        got = self.app.job(job_id).cancel()  # finds the queue, as `resq job cancel` does
        if job.status in (S.QUEUED, S.SCHEDULED, S.RETRYING):
            assert got == S.CANCELLED
            job.status = S.CANCELLED
            job.cancel_flagged = False  # the cancel set holds jobs that may still run, never a final one
            for key, lease in list(self.leases.items()):  # a lease taken of it goes with it (acked): its
                if lease.job_id == job_id:  # worker, starting it later, changes nothing
                    del self.leases[key]
                    self.stale.append((lease.worker, lease.delivery))
        elif job.status == S.RUNNING:
            assert got == S.RUNNING  # the worker is asked to stop
            job.cancel_flagged = True
        else:
            assert got == job.status  # already final: untouched

    @precondition(lambda self: any(job.status == S.DEAD for job in self.jobs.values()))
    @rule(pick=PICK)
    def revive(self, pick: int) -> None:
        """Revive a job, dead or not (`resq dead retry` refuses a job that is not dead)."""
        job_id = list(self.jobs)[pick % len(self.jobs)]
        job = self.jobs[job_id]
        if job.status != S.DEAD:
            with pytest.raises(UnknownJob):
                Inspector(self.app).retry_dead(job_id)
            return
        assert Inspector(self.app).retry_dead(job_id) == Q  # `resq dead retry ID`
        job.status, job.attempt, job.lost = S.QUEUED, 0, 0

    # -- workers ------------------------------------------------------------------------------------

    @precondition(lambda self: bool(self._waiting()))
    @rule(
        slot=st.integers(min_value=0, max_value=WORKER_SLOTS - 1),
        count=st.integers(min_value=1, max_value=3),
        start_first=st.booleans(),
    )
    def fetch(self, slot: int, count: int, start_first: bool = False) -> None:
        """A worker leases up to ``count`` jobs (and, as a worker does, starts the first)."""
        worker = self.workers[slot]
        waiting = self._waiting()
        found = self.app.broker.queues.fetch(worker, [Q], count, None)
        ids = [d.job_id for d in found]
        assert min(count, len(waiting)) <= len(found) <= count, (count, waiting, ids)
        assert len(set(ids)) == len(ids) and set(ids) <= set(waiting), (ids, waiting)
        for delivery in found:
            assert lease_key(delivery) not in self.leases
            self.leases[lease_key(delivery)] = Lease(delivery, worker)
        if start_first:
            self._start(self.leases.pop(lease_key(found[0])))

    @precondition(lambda self: bool(self._leases(started=False)))
    @rule(pick=PICK)
    def start(self, pick: int) -> None:
        """A worker (alive, or killed but not reaped yet: paused) begins an attempt of a leased job."""
        self._start(self._pop_lease(pick, started=False))

    def _start(self, lease: Lease) -> None:
        job = self.jobs[lease.job_id]
        started = self.app.broker.queues.start(lease.worker, lease.delivery)
        if job.status == S.CANCELLED:  # cancelled while leased: the worker drops the entry
            assert not started.runnable and started.prior == S.CANCELLED
            self._record(Discarded(lease.delivery, lease.job_id))
            return
        assert job.status == S.QUEUED
        assert started.runnable and started.prior == S.QUEUED and started.attempt == job.attempt + 1
        assert started.envelope is not None and decode_envelope(started.envelope).args == [1, 2]
        job.status, job.attempt = S.RUNNING, job.attempt + 1
        lease.started = True
        self.leases[lease_key(lease.delivery)] = lease

    @precondition(lambda self: bool(self._leases(started=True)))
    @rule(pick=PICK)
    def succeed(self, pick: int) -> None:
        lease = self._pop_lease(pick, started=True)
        self._record(Succeeded(lease.delivery, lease.job_id, pack(3), 60_000, 1))
        self._settle(lease, S.SUCCEEDED)
        assert self.app.job(lease.job_id).result(timeout=0) == 3

    @precondition(lambda self: bool(self._leases(started=True)))
    @rule(pick=PICK, delay_h=st.sampled_from([0, 1]))
    def fail_and_retry(self, pick: int, delay_h: int) -> None:
        lease = self._pop_lease(pick, started=True)
        due = now_ms() + delay_h * HOUR_MS
        flagged = self.jobs[lease.job_id].cancel_flagged  # asked to cancel: the failed attempt is its last
        self._record(Retried(lease.delivery, lease.job_id, pack({"type": "E", "message": "again"}), due, 1))
        self._settle(lease, S.CANCELLED if flagged else S.RETRYING, 0 if flagged else due)

    @precondition(lambda self: bool(self._leases(started=True)))
    @rule(pick=PICK)
    def fail_for_good(self, pick: int) -> None:
        lease = self._pop_lease(pick, started=True)
        self._record(Dead(lease.delivery, lease.job_id, pack({"type": "E", "message": "no more"}), 1))
        self._settle(lease, S.DEAD)
        with pytest.raises(JobFailed) as failed:
            self.app.job(lease.job_id).result(timeout=0)
        assert failed.value.exc_type == "E" and not isinstance(failed.value, JobCancelled)

    @precondition(lambda self: bool(self._leases(started=True)))
    @rule(pick=PICK)
    def stop_as_cancelled(self, pick: int) -> None:
        """A worker stops its job (a cancellation it was asked for, or a hook's SkipJob)."""
        lease = self._pop_lease(pick, started=True)
        self._record(Cancelled(lease.delivery, lease.job_id, "cancelled while running"))
        self._settle(lease, S.CANCELLED)
        with pytest.raises(JobCancelled):
            self.app.job(lease.job_id).result(timeout=0)

    @precondition(lambda self: any(le.worker in self.workers for le in self.leases.values()))
    @rule(pick=PICK)
    def hand_back(self, pick: int) -> None:
        """A stopping worker gives a lease back (\"returned\": the attempt does not count); a running job whose
        cancellation was asked for ends cancelled instead."""
        held = [le for le in self.leases.values() if le.worker in self.workers]
        lease = held[pick % len(held)]
        del self.leases[lease_key(lease.delivery)]
        job = self.jobs[lease.job_id]
        got = self.app.broker.queues.release(lease.delivery, "returned")
        if job.status == S.CANCELLED:
            assert got == "gone"
            return
        if job.status == S.RUNNING and job.cancel_flagged:
            assert got == "cancelled"
            self._settle_cancelled(job)
            return
        assert got == "queued"
        if job.status == S.RUNNING:
            job.attempt -= 1
        job.status = S.QUEUED  # a cancellation asked for while it ran waits for its next attempt

    def _busy_slots(self) -> list[int]:
        holders = {lease.worker for lease in self.leases.values()}
        return [slot for slot, worker in enumerate(self.workers) if worker in holders]

    @precondition(lambda self: bool(self._busy_slots()))
    @rule(pick=PICK)
    def kill(self, pick: int) -> None:
        """A worker holding leases stops heartbeating (killed, or paused): its deadline in the registry
        passes, and a new worker process takes its slot. Its leases stay until a reaper gives them back."""
        slots = self._busy_slots()
        slot = slots[pick % len(slots)]
        worker = self.workers[slot]
        self.redis.set_deadline(self.keys.workers, worker, now_ms() - 1)
        self.zombies.add(worker)
        self.workers[slot] = self._new_worker(slot)

    @precondition(lambda self: any(lease.worker in self.zombies for lease in self.leases.values()))
    @rule()
    def reap(self) -> None:
        """Two looks of the maintenance's reaper, a confirmation apart: the leases of every killed worker
        go back to the queue (a running job counts a loss, and is dead at MAX_LOSSES)."""
        reaper = Maintenance(self.reaper, [Q])
        assert reaper.reap() == 0  # a first look only suspects
        time.sleep(REAPER_HEARTBEAT_S * CONFIRM_AFTER + 0.005)
        released = reaper.reap()
        expected = 0
        for key, lease in list(self.leases.items()):
            if lease.worker not in self.zombies:
                continue
            del self.leases[key]
            self.stale.append((lease.worker, lease.delivery))
            job = self.jobs[lease.job_id]
            if job.status == S.CANCELLED:  # its entry went with the cancellation: nothing to give back
                continue
            expected += 1
            if job.status == S.RUNNING and job.cancel_flagged:  # it ends as its cancellation asked
                self._settle_cancelled(job)
            elif job.status == S.RUNNING:
                job.lost += 1
                job.cancel_flagged = False
                job.status = S.DEAD if job.lost >= MAX_LOSSES else S.QUEUED
            else:
                assert job.status == S.QUEUED
        self.zombies.clear()
        assert released == expected

    @precondition(lambda self: bool(self.stale))
    @rule(pick=PICK, kind=st.integers(min_value=0, max_value=4))
    def stale_outcome(self, pick: int, kind: int) -> None:
        """A killed worker wakes after its lease was reaped (and maybe re-fetched by another): whatever it
        records, or starting the job again, changes nothing (fencing)."""
        worker, d = self.stale[pick % len(self.stale)]
        job_id = str(d.job_id)
        before = self._hash(job_id)
        error = pack({"type": "E", "message": "late"})
        if kind == 4:
            started = self.app.broker.queues.start(worker, d)
            assert not started.runnable, started
            self._record(Discarded(d, job_id))
        else:
            late: list[Outcome] = [
                Succeeded(d, job_id, pack(99), 60_000, 1),
                Retried(d, job_id, error, now_ms(), 1),
                Dead(d, job_id, error, 1),
                Cancelled(d, job_id, "late"),
            ]
            self._record(late[kind])
        assert self._hash(job_id) == before

    @precondition(lambda self: any(job.status in (S.SCHEDULED, S.RETRYING) for job in self.jobs.values()))
    @rule(horizon_h=st.sampled_from([0, 1.5, 3]))
    def promote(self, horizon_h: float) -> None:
        until = now_ms() + int(horizon_h * HOUR_MS)
        due = [i for i, job in self.jobs.items() if job.status in (S.SCHEDULED, S.RETRYING) and job.due_ms <= until]
        assert Maintenance(self.app, [Q]).promote(now=until) == len(due)
        for job_id in due:
            self.jobs[job_id].status = S.QUEUED

    # -- invariants ---------------------------------------------------------------------------------

    def _stream_entries(self) -> Iterator[tuple[bool, str, str]]:
        """(front, entry, job id) of every entry of the queue's streams."""
        for stream in streams(self.keys, Q):
            front = stream != self.keys.queue(Q)
            for entry, job_id in self.redis.entries(stream):
                yield front, entry, job_id

    def _pending(self) -> dict[tuple[bool, str], str]:
        """Every lease of the queue's consumer group: (front, entry) -> consumer."""
        found = {}
        for stream in streams(self.keys, Q):
            front = stream != self.keys.queue(Q)
            for entry, consumer in self.redis.pending(stream):
                found[(front, entry)] = consumer
        return found

    def check_all(self) -> None:
        """Every invariant, for a run driven by hand."""
        self.every_job_is_in_exactly_one_place()
        self.redis_holds_the_model_status_of_every_job()
        self.every_change_of_status_is_an_allowed_edge()
        self.the_inspector_counts_what_the_model_holds()

    @invariant()
    def every_job_is_in_exactly_one_place(self) -> None:
        in_streams: dict[str, list[tuple[bool, str]]] = {}
        for front, entry, job_id in self._stream_entries():
            in_streams.setdefault(job_id, []).append((front, entry))
        scheduled = self.redis.scores(self.keys.scheduled(Q))
        dead = set(self.redis.scores(self.keys.dead(Q)))
        pending = self._pending()
        # the streams hold one entry per queued or running job, nothing else (no job twice)
        assert set(in_streams) <= set(self.jobs), in_streams
        for job_id, entries in in_streams.items():
            assert len(entries) == 1, f"job {job_id} has {len(entries)} stream entries: {entries}"
        assert set(in_streams) == {i for i, j in self.jobs.items() if j.status in (S.QUEUED, S.RUNNING)}
        # the scheduled set: scheduled and retrying jobs, at their due time; the dead set: dead jobs
        assert scheduled == {i: j.due_ms for i, j in self.jobs.items() if j.status in (S.SCHEDULED, S.RETRYING)}
        assert dead == {i for i, j in self.jobs.items() if j.status == S.DEAD}
        # a job is in one of them at most (implied above, said outright)
        for job_id in self.jobs:
            places = [job_id in in_streams, job_id in scheduled, job_id in dead]
            assert sum(places) <= 1, (job_id, places)
        # the leases are the model's: who holds which entry
        assert pending == {key: lease.worker for key, lease in self.leases.items()}
        for key, lease in self.leases.items():
            job = self.jobs[lease.job_id]
            if job.status == S.CANCELLED:  # cancelled while leased: the entry went, the lease waits
                assert not lease.started and lease.job_id not in in_streams
            else:
                assert in_streams[lease.job_id] == [key], (lease, in_streams.get(lease.job_id))
                assert job.status == (S.RUNNING if lease.started else S.QUEUED)
        running = [i for i, j in self.jobs.items() if j.status == S.RUNNING]
        assert sorted(running) == sorted(le.job_id for le in self.leases.values() if le.started)
        cancel_set = self.redis.members(self.keys.cancel_requests(Q))
        assert cancel_set == {i for i, j in self.jobs.items() if j.cancel_flagged}
        assert all(self.jobs[i].status in ACTIVE for i in cancel_set), "a final job in the cancel set"

    @invariant()
    def redis_holds_the_model_status_of_every_job(self) -> None:
        ids = sorted(self.jobs)
        rows = self.app.broker.jobs.summaries([(Q, i) for i in ids], ("status", "attempt", "lost", "worker", "entry"))
        leases = {lease.job_id: lease for lease in self.leases.values()}
        for job_id, (status, attempt, lost, worker, entry) in zip(ids, rows, strict=True):
            job = self.jobs[job_id]
            assert status is not None, f"job {job_id} lost its record"
            found = (JobStatus(status.decode()), int(attempt or 0), int(lost or 0))
            assert found == (job.status, job.attempt, job.lost), job_id
            lease = leases.get(job_id)
            if lease is not None and job.status != S.CANCELLED:
                assert (entry or b"").decode() == lease.delivery.entry
                if lease.started:
                    assert (worker or b"").decode() == lease.worker
        assert self.redis.keys(self.keys.job_prefix(Q)) == set(self.jobs)  # no record of a job the model does not know

    @invariant()
    def every_change_of_status_is_an_allowed_edge(self) -> None:
        for job_id in self.jobs:
            before = self.seen.get(job_id)
            status = self.app.broker.jobs.status(Q, job_id)
            assert status is not None and status != S.FAILED  # `failed` is an event, never a status
            if status != before:
                assert (before, status) in ALLOWED, f"job {job_id}: {before} -> {status}"
                self.seen[job_id] = status

    @invariant()
    def the_inspector_counts_what_the_model_holds(self) -> None:
        [info] = Inspector(self.app).queues()
        statuses = [job.status for job in self.jobs.values()]
        assert info.name == Q and info.running == len(self.leases)
        assert info.scheduled == statuses.count(S.SCHEDULED) + statuses.count(S.RETRYING)
        assert info.dead == statuses.count(S.DEAD)
        if not any(self.jobs[le.job_id].status == S.CANCELLED for le in self.leases.values()):
            assert info.waiting == len(self._waiting())


@pytest.fixture
def machine(redis_url: str) -> type[JobMachine]:
    """The machine bound to this test's database (each example flushes it first)."""
    return type("JobMachineOnDb", (JobMachine,), {"redis_url": redis_url})


def test_the_job_state_machine_keeps_every_job_in_exactly_one_place(machine: type[JobMachine]) -> None:
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=100 if os.environ.get("RESQ_CHAOS") == "full" else 15,
            stateful_step_count=50,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


def test_a_run_of_the_machine_reaches_every_kind_of_step(machine: type[JobMachine]) -> None:
    """The machine's rules are not dead code: one fixed run goes through each of them (every invariant
    checked after each step, as hypothesis does), the fencing and a job dead of its losses included."""
    state = machine()

    def step(name: str, **arguments: float) -> None:
        getattr(state, name)(**arguments)
        state.check_all()

    try:
        state.check_all()
        step("enqueue_some", delay_h=0, count=1)
        step("enqueue_some", delay_h=0, count=1)
        step("enqueue_some", delay_h=1, count=1)
        step("fetch", slot=0, count=2)
        step("start", pick=0)
        step("kill", pick=0)
        step("reap")  # the running job lost its worker once, the leased one is queued again
        step("stale_outcome", pick=0, kind=0)
        step("fetch", slot=1, count=3)
        step("start", pick=0)
        step("start", pick=0)
        for kind in range(5):
            step("stale_outcome", pick=0, kind=kind)  # refused, while another worker runs the job
        step("kill", pick=0)
        step("reap")  # the job that lost its worker twice is dead
        assert sorted(j.status for j in state.jobs.values()) == sorted([S.DEAD, S.QUEUED, S.SCHEDULED])
        [dead] = [i for i, j in state.jobs.items() if j.status == S.DEAD]
        step("revive", pick=list(state.jobs).index(dead) + 1)  # not dead: refused
        step("revive", pick=list(state.jobs).index(dead))
        step("promote", horizon_h=3)
        step("fetch", slot=2, count=3)
        for _ in range(3):
            step("start", pick=0)
        step("stop_as_cancelled", pick=0)  # as a before_perform hook's SkipJob does
        step("fail_and_retry", pick=0, delay_h=0)
        step("promote", horizon_h=0)
        step("fail_for_good", pick=0)
        step("fetch", slot=2, count=1)
        step("start", pick=0)
        step("succeed", pick=0)
        assert {j.status for j in state.jobs.values()} == {S.CANCELLED, S.DEAD, S.SUCCEEDED}
    finally:
        state.teardown()


# -- what the machine found, fixed since (each once a strict xfail) ----------------------------------


@pytest.fixture
def app(redis_url: str) -> Iterator[Resq]:
    app = Resq(redis_url)

    @app.task(name="add")
    def add(x: int, y: int) -> int:
        return x + y

    app.broker.queues.ensure_groups([Q])
    yield app
    app.broker.close()


def test_a_cancel_request_ends_with_its_job(app: Resq, redis_client: redis.Redis) -> None:
    job = app.tasks["add"].delay(1, 2)
    [lease] = app.broker.queues.fetch("w1", [Q], 1, None)
    assert app.broker.queues.start("w1", lease).runnable
    assert job.cancel() == S.RUNNING  # the worker is asked to stop
    # It stops instead, giving the job back: the job ends cancelled, as asked, and its request goes
    assert app.broker.queues.release(lease, "returned") == "cancelled"
    assert job.status() == S.CANCELLED
    assert redis_client.smembers(app.broker.keys.cancel_requests(Q)) == set()
    assert redis_client.pttl(app.broker.keys.job(Q, job.id)) > 0


def test_a_failed_attempt_of_a_job_asked_to_cancel_is_its_last(app: Resq, redis_client: redis.Redis) -> None:
    job = app.tasks["add"].delay(1, 2)
    [lease] = app.broker.queues.fetch("w1", [Q], 1, None)
    assert app.broker.queues.start("w1", lease).runnable
    assert job.cancel() == S.RUNNING  # asked to stop; the attempt fails before it notices
    app.broker.queues.record([Retried(lease, job.id, pack({"type": "E", "message": "x"}), now_ms(), 1)])
    assert job.status() == S.CANCELLED  # not retried
    assert redis_client.zcard(app.broker.keys.scheduled(Q)) == 0
    assert redis_client.smembers(app.broker.keys.cancel_requests(Q)) == set()
    assert redis_client.pttl(app.broker.keys.job(Q, job.id)) > 0


def test_the_inspector_counts_the_jobs_waiting_beside_a_job_cancelled_while_leased(app: Resq) -> None:
    app.tasks["add"].delay(1, 2)
    app.tasks["add"].delay(3, 4)
    [lease] = app.broker.queues.fetch("w1", [Q], 1, None)
    assert app.job(str(lease.job_id)).cancel() == S.CANCELLED
    [info] = Inspector(app).queues()
    assert info.waiting == 1, info
