"""Resque-family queues served by a resq worker (``resq worker --resque-queues mail,default``,
``docs/resque.md``).

The supervisor's upkeep takes the jobs that Ruby, PHP (CakeResque) or node producers push onto
``resque:queue:<name>`` and makes a resq job of each, in resq's queue of the same name, which the worker
serves: from then on the job has every guarantee of resq's (a lease, retries, time limits, history).

A job is never only in this process's memory. ``resque_take.lua`` moves it from its list into the
worker's in-flight hash under the next number of the namespace's sequence; the resq job made of it has the
id ``<namespace>:<number>`` and is created only if no job of that id ever existed; then it leaves the hash.
When a worker dies in between, another worker's upkeep finds its hash past its deadline and makes the resq
jobs of what is left (the same ids: a job made already is not made twice).

A class no task runs, a payload that is not a job, or arguments the task does not take go straight to
``resque:failed``, with the reason, where the Resque family's tools list them and retry them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from resq.app import Resq
from resq.broker.keys import ResqueKeys
from resq.clock import now_ms
from resq.errors import ArgumentsError, ConfigError, EncodeError, PayloadTooLarge, Veto
from resq.log import get_logger
from resq.producer import Prepared, prepare_new, store_many
from resq.resque import DEFAULT_NAMESPACE, RESQUE_META, failure_record, validate_namespace
from resq.settings import validate_name
from resq.task import Task

__all__ = ["BUSY_TICK_S", "ResqueQueues"]

log = get_logger("resq.worker")

#: Jobs taken from the Resque queues per script call.
TAKE_PER_CALL = 100
#: The most jobs taken in one pass of the upkeep (the rest wait for the next pass, a tick later).
MOST_PER_PASS = 2000
#: The most entries a resq queue holds before the upkeep takes more from its Resque list: the backlog
#: stays there, where the Resque family's tools count it and its workers may take it.
MOST_WAITING = 2000
#: The supervisor's tick while jobs come from Resque queues, in seconds (a pass every 20 ms at most).
BUSY_TICK_S = 0.02
#: How often the upkeep looks for dead workers' in-flight jobs, in seconds.
RECOVER_EVERY_S = 1.0
#: Why a job could not be made a resq job: the exception names its failure record shows.
UNKNOWN_CLASS = "UnknownClass"
BAD_PAYLOAD = "BadPayload"


class ResqueQueues:
    """Resque queues a worker serves: their jobs made resq jobs by the supervisor's upkeep.

    Args:
        app: the app (its tasks, by ``resque_class``, and its Redis).
        queues: the Resque queue names, highest priority first.
        namespace: the Resque namespace of the producers (``resque``).
        worker_id: the id the worker shows the Resque family (``host:pid:queue,queue``).

    Raises:
        ConfigError: a bad queue name or namespace, a mapping to a task the app does not register, or a
            Redis Cluster (a job moves between keys that share no hash tag).
    """

    def __init__(self, app: Resq, queues: Sequence[str], namespace: str, worker_id: str) -> None:
        if not queues:
            raise ConfigError("--resque-queues names no queue: e.g. --resque-queues mail,default")
        self.queues = [validate_name(q, "Resque queue name") for q in queues]
        validate_namespace(namespace)
        if app.broker.connection.cluster:
            raise ConfigError(
                "--resque-queues needs one Redis (or Sentinel), not a Redis Cluster: the Resque family's keys "
                "share no hash tag, so a job cannot move between them atomically"
            )
        unknown = sorted(name for name in app.resque_classes.values() if name not in app.tasks)
        if unknown:
            raise ConfigError(f"app.resque_classes names tasks this app does not register: {', '.join(unknown)}")
        self.app = app
        self.keys = ResqueKeys(namespace)
        self.namespace = namespace
        self.worker_id = worker_id
        self._recovered_at = 0.0
        #: jobs of this worker's in-flight hash that a failed pass left there (made at the next pass)
        self._left = False
        #: the last pass took jobs (the supervisor ticks every ``BUSY_TICK_S`` meanwhile)
        self.busy = False
        app.count_resque_jobs()

    @classmethod
    def for_worker(cls, app: Resq, queues: Sequence[str], namespace: str | None, host: str, pid: int) -> ResqueQueues:
        """The Resque queues of the worker of process ``pid`` on ``host``."""
        return cls(app, queues, namespace or DEFAULT_NAMESPACE, f"{host}:{pid}:{','.join(queues)}")

    def start(self) -> None:
        """Show the worker in the Resque family's list of workers."""
        started = time.strftime("%Y-%m-%d %H:%M:%S +0000", time.gmtime())
        self.app.broker.resque.register_worker(self.keys, self.worker_id, started, _beat())
        log.info("resque_queues_served", worker=self.worker_id, namespace=self.namespace, queues=self.queues)

    def heartbeat(self) -> None:
        self.app.broker.resque.heartbeat(self.keys, self.worker_id, _beat())

    def step(self, everything: bool = False) -> int:
        """One pass: recover dead workers' in-flight jobs (every ``RECOVER_EVERY_S``), then take jobs from
        the queues and make resq jobs of them, up to ``MOST_WAITING`` in each resq queue (``everything``:
        as many as ``MOST_PER_PASS``, whatever waits); returns how many were taken."""
        if time.monotonic() - self._recovered_at >= RECOVER_EVERY_S:
            self._recovered_at = time.monotonic()
            self._recover()
        if self._left:
            self._make(self.worker_id, self.app.broker.resque.in_flight(self.keys, self.worker_id))
            self._left = False
        taken = 0
        while taken < MOST_PER_PASS:
            self._left = True  # a reply lost after Redis took the jobs leaves them in flight
            jobs = self.app.broker.resque.take(
                self.keys,
                self.worker_id,
                self.queues,
                TAKE_PER_CALL,
                self._deadline(),
                None if everything else MOST_WAITING,
            )
            self._make(self.worker_id, jobs)
            self._left = False
            taken += len(jobs)
            if len(jobs) < TAKE_PER_CALL:
                break
        self.busy = taken > 0
        return taken

    def stop(self) -> None:
        """Make resq jobs of anything left in flight, and leave the list of workers."""
        resque = self.app.broker.resque
        self._make(self.worker_id, resque.in_flight(self.keys, self.worker_id))
        resque.unregister_worker(self.keys, self.worker_id)
        log.info("resque_queues_left", worker=self.worker_id)

    def _deadline(self) -> int:
        """When this worker counts as dead if it takes no more (as resq's own heartbeats: 3 intervals)."""
        return now_ms() + int(3 * self.app.settings.heartbeat_interval * 1000)

    def _recover(self) -> None:
        """Make resq jobs of what dead workers left in flight, then remove those workers."""
        resque = self.app.broker.resque
        for owner in resque.dead_owners(self.keys, now_ms()):
            if owner == self.worker_id:
                continue
            left = resque.in_flight(self.keys, owner)
            self._make(owner, left)
            resque.unregister_worker(self.keys, owner)
            log.log(30 if left else 20, "resque_jobs_recovered", dead_worker=owner, jobs=len(left))

    def _make(self, owner: str, jobs: list[tuple[int, str, str]]) -> None:
        """Make a resq job of each job ``owner`` holds in flight (or its failure record), those of one
        queue in one round trip, then drop them from the hash."""
        decoded = [(number, queue, payload, _decoded(payload)) for number, queue, payload in jobs]
        ids = [found for *_, job in decoded if (found := _php_id(job))]
        tracked = self.app.broker.resque.tracked(self.keys, ids) if ids else set()
        numbers: list[int] = []
        prepared: list[Prepared] = []
        for number, queue, payload, job in decoded:
            made = self._prepared(owner, number, queue, payload, job, tracked)
            if made is not None:
                numbers.append(number)
                prepared.append(made)
        store_many(self.app, prepared, if_absent=True)
        self.app.broker.resque.settle(self.keys, owner, numbers)

    def _prepared(
        self, owner: str, number: int, queue: str, payload: str, job: dict[str, Any] | _NotAJob, tracked: set[str]
    ) -> Prepared | None:
        """The resq job of one job, ready to store; None when a failure record was written instead (which
        drops the job from the in-flight hash itself). ``tracked``: the php-resque ids whose status is
        kept (their jobs' status is written as they run)."""
        job_id = f"{self.namespace}:{number}"
        try:
            task, args = self._task_and_args(job)
            task.check_arguments(args, None)
            taken = {"ns": self.namespace, "queue": queue, "worker": self.worker_id, "payload": payload}
            php_id = _php_id(job)
            meta = {RESQUE_META: {**taken, "id": php_id} if php_id in tracked else taken}
            return prepare_new(self.app, task.name, args, None, queue, job_id=job_id, meta=meta)
        except (_NotAJob, ArgumentsError, ConfigError, EncodeError, PayloadTooLarge, Veto) as exc:
            kind = exc.kind if isinstance(exc, _NotAJob) else type(exc).__name__
            record = failure_record(payload, queue, self.worker_id, kind, str(exc), [f"resq worker {self.worker_id}"])
            self.app.broker.resque.failed(self.keys, self.worker_id, record, in_flight=(owner, number))
            log.error("resque_job_failed", job_id=job_id, queue=queue, error=kind, reason=str(exc), worker=owner)
            return None

    def _task_and_args(self, job: dict[str, Any] | _NotAJob) -> tuple[Task[Any, Any], list[Any]]:
        """The task that runs a job's class, and its arguments: Resque's ``args`` list, positional
        (php-resque's ``[{...}]`` is one dict argument).

        Raises:
            _NotAJob: the payload was no job's JSON, or no task runs its class.
        """
        if isinstance(job, _NotAJob):
            raise job
        cls: str = job["class"]
        task = self.app.tasks.get(self.app.resque_classes.get(cls, cls))
        if task is None:
            raise _NotAJob(
                UNKNOWN_CLASS,
                f"no task runs the Resque class {cls!r}: add @app.task(resque_class={cls!r}) "
                f"or app.resque_classes[{cls!r}] = 'task name'",
            )
        args = job.get("args")
        return task, args if isinstance(args, list) else [] if args is None else [args]


def _decoded(payload: str) -> dict[str, Any] | _NotAJob:
    """A payload's job (a JSON object with a ``class``), or why it is none."""
    try:
        job = json.loads(payload)
    except ValueError as exc:
        return _NotAJob(BAD_PAYLOAD, f"the payload is not JSON ({exc})")
    if not isinstance(job, dict) or not isinstance(job.get("class"), str):
        return _NotAJob(BAD_PAYLOAD, "the payload is not a Resque job: it has no 'class'")
    return job


def _php_id(job: dict[str, Any] | _NotAJob) -> str | None:
    """A job's php-resque id (its status may be tracked), if it has one."""
    found = None if isinstance(job, _NotAJob) else job.get("id")
    return found if isinstance(found, str) and found else None


class _NotAJob(Exception):
    """A payload resq cannot make a job of; ``kind`` names it in its failure record."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind


def _beat() -> str:
    """A heartbeat's time as Ruby Resque writes it (ISO 8601)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
