"""Workflows: signatures, chains, groups, chords, batches and ``depends_on`` (``docs/workflows.md``).

A :class:`Signature` is a task with its arguments, not yet enqueued (``task.s(...)``, ``task.si(...)``).
``resq.chain(a.s(), b.s(), c.s())`` runs its steps one after the other, each receiving the previous
step's result as its first argument (unless it was made with ``.si()``).

Every step's job id is drawn when the chain is made, and the steps after the first travel in the
first job's ``meta`` (``"chain"``). When a step succeeds, its worker builds the next step's job (the
same ``before_enqueue`` hooks, sealing and encoding as any enqueue) and the ``succeed`` script creates it
in the same step that records the success: a worker killed between a step's end and the next step's
enqueue loses nothing and doubles nothing (a step run again after such a kill finds its successor
already there: ids are idempotent). A step that ends dead, or is cancelled, ends the chain; a retried
step runs again alone, the steps before it are not re-run.

A chord, a batch and a job enqueued with ``depends_on`` wait on a *join* (``resq.broker.workflows``,
``_workflow.lua``): the record of the jobs they wait for (its members), stored under the workflow's own
hash tag. Their callbacks are stored at once as ``deferred`` jobs, and the script that records a
member's end counts it and releases (or ends, by the join's policy) the callbacks it decides, in the
same step: exactly once, however many workers end members at the same moment.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from resq.broker.workflows import Callback
from resq.context import BatchScope, _batch
from resq.errors import ConfigError, CycleError, ResultTimeout
from resq.job import TERMINAL_STATUSES, Job, JobStatus, new_job_id
from resq.producer import Call, enqueue, enqueue_many, prepare_callback
from resq.retry import to_seconds

if TYPE_CHECKING:
    from resq.app import Resq

__all__ = [
    "BATCH_CALLBACK_META",
    "CHAIN_META",
    "CHORD_META",
    "Batch",
    "BatchStatus",
    "Chain",
    "ChainResult",
    "Chord",
    "ChordResult",
    "Group",
    "GroupProgress",
    "GroupResult",
    "Signature",
    "batch_status",
    "chain",
    "chord",
    "enqueue_dependent",
    "group",
]

#: The key of a job's ``meta`` that holds the steps of its chain after it.
CHAIN_META = "chain"
#: The key of a chord callback's ``meta``: the chord's id (its worker reads the members' results).
CHORD_META = "chord"
#: The key of a batch callback's ``meta``: the batch's id (its worker reads the batch's counts).
BATCH_CALLBACK_META = "batch_of"


@dataclass(frozen=True)
class Signature:
    """A task with its arguments, to enqueue later: one step of a workflow."""

    app: Resq = field(repr=False, compare=False)
    task: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    queue: str = "default"
    #: made with ``.si()``: the step ignores the previous step's result
    immutable: bool = False

    def led_by(self, value: Any) -> list[Any]:
        """Its arguments, led by ``value`` (what came before it: a result, a chord's results, a batch's
        counts) unless it was made with ``.si()``."""
        return list(self.args) if self.immutable else [value, *self.args]

    def step(self, job_id: str) -> dict[str, Any]:
        """The form a step travels in, in the meta of the step before it."""
        return {
            "id": job_id,
            "task": self.task,
            "args": list(self.args),
            "kwargs": dict(self.kwargs),
            "queue": self.queue,
            "immutable": self.immutable,
        }


def _checked(steps: Sequence[Any], what: str, example: str) -> tuple[Signature, ...]:
    """``steps`` as signatures of one app, or a one-line ConfigError."""
    if not steps:
        raise ConfigError(f"resq.{what} needs at least one step: {example}")
    for step in steps:
        if not isinstance(step, Signature):
            raise ConfigError(f"a {what}'s steps are signatures (task.s(...) or task.si(...)), got {step!r}")
    if len({id(step.app) for step in steps}) > 1:
        raise ConfigError(f"a {what}'s steps must be tasks of one app")
    return tuple(steps)


def chain(*steps: Signature) -> Chain:
    """The steps run one after the other, each receiving the previous one's result as its first
    argument (a step made with ``.si()`` does not).

    Example::

        flow = resq.chain(fetch.s(url), parse.s(), store.s())
        handle = flow.delay()
        handle.result(timeout=30)          # store's result

    Raises:
        ConfigError: no step, a step that is not a signature, or steps of different apps.
    """
    return Chain(steps)


class Chain:
    """Steps to run in order (see :func:`chain`)."""

    def __init__(self, steps: Sequence[Signature]) -> None:
        self.steps = _checked(steps, "chain", "resq.chain(a.s(...), b.s(), ...)")

    def delay(self) -> ChainResult:
        """Enqueue the first step (the others follow as each succeeds); returns a handle on them all."""
        first, app = self.steps[0], self.steps[0].app
        ids = [new_job_id() for _ in self.steps]
        rest = [step.step(job_id) for step, job_id in zip(self.steps[1:], ids[1:], strict=True)]
        meta = {CHAIN_META: rest} if rest else {}
        enqueue(app, first.task, first.args, first.kwargs, queue=first.queue, job_id=ids[0], meta=meta)
        return ChainResult(app, [(job_id, step.queue, step.task) for job_id, step in zip(ids, self.steps, strict=True)])

    apply_async = delay


class ChainResult:
    """A handle on the jobs of a chain, in order (a step's job exists once the step before it succeeded)."""

    def __init__(self, app: Resq, steps: list[tuple[str, str, str]]) -> None:
        self.app = app
        self.jobs: list[Job[Any]] = [Job(app, job_id, queue, task=task) for job_id, queue, task in steps]

    @property
    def id(self) -> str:
        """The id of the chain's last job (whose result is the chain's)."""
        return self.jobs[-1].id

    def result(self, timeout: float | None = None) -> Any:
        """The last step's result, once every step succeeded.

        Raises:
            JobFailed: a step ended dead (or was cancelled: ``JobCancelled``), so the chain ended there.
            ResultTimeout: the chain did not finish within ``timeout`` seconds.
        """
        deadline = None if timeout is None else _now() + timeout
        value: Any = None
        for job in self.jobs:
            left = None if deadline is None else max(0.0, deadline - _now())
            value = self._step_result(job, left)
        return value

    def _step_result(self, job: Job[Any], timeout: float | None) -> Any:
        """One step's result, waiting for its job to exist (its predecessor creates it) and to end."""
        deadline = None if timeout is None else _now() + timeout
        while not self.app.job_store.fields(job.queue, job.id):
            if deadline is not None and _now() >= deadline:
                raise ResultTimeout(f"job {job.id} (a step of the chain) did not start within {timeout} s")
            _sleep(STEP_LOOK_S)
        left = None if deadline is None else max(0.0, deadline - _now())
        return job.result(timeout=left)


def group(*steps: Signature | Iterable[Signature]) -> Group:
    """Jobs that run in parallel, each on its own: ``resq.group(resize.s(img, w) for w in sizes)`` (or
    the signatures as arguments).

    Raises:
        ConfigError: no step, a step that is not a signature, or steps of different apps.
    """
    if len(steps) == 1 and not isinstance(steps[0], Signature):
        return Group(list(steps[0]))
    return Group(list(steps))  # type: ignore[arg-type]


class Group:
    """Steps to run in parallel (see :func:`group`)."""

    def __init__(self, steps: Sequence[Signature]) -> None:
        self.steps = _checked(steps, "group", "resq.group(task.s(x) for x in items)")

    def delay(self) -> GroupResult:
        """Enqueue every step (in chunks, one round trip each); returns a handle on them, in order."""
        app = self.steps[0].app
        calls = (Call(step.task, step.args, step.kwargs, step.queue) for step in self.steps)
        return GroupResult(app, enqueue_many(app, calls))

    apply_async = delay


@dataclass(frozen=True)
class GroupProgress:
    """How far a group is: its jobs that ended (``done``), that ended other than succeeded (``failed``),
    of ``total``."""

    done: int
    failed: int
    total: int

    @property
    def finished(self) -> bool:
        """Whether every job of the group ended."""
        return self.done == self.total


class GroupResult:
    """A handle on the jobs of a group, in the order of its steps."""

    def __init__(self, app: Resq, jobs: list[Job[Any]]) -> None:
        self.app = app
        self.jobs = jobs

    def results(self, timeout: float | None = None) -> list[Any]:
        """Every step's result, in order, once all succeeded.

        Raises:
            JobFailed: a step ended dead (``JobCancelled``: cancelled); the others may still run.
            ResultTimeout: the group did not finish within ``timeout`` seconds.
        """
        deadline = None if timeout is None else _now() + timeout
        return [job.result(timeout=None if deadline is None else max(0.0, deadline - _now())) for job in self.jobs]

    def progress(self) -> GroupProgress:
        """How many of the group's jobs ended, and how many of those did not succeed, at this moment."""
        store = self.app.job_store
        statuses = [store.status(job.queue, job.id) for job in self.jobs]
        done = [s for s in statuses if s in TERMINAL_STATUSES]
        return GroupProgress(len(done), sum(1 for s in done if s != JobStatus.SUCCEEDED), len(self.jobs))


def chord(header: Group | Iterable[Signature], body: Signature) -> Chord:
    """The jobs of ``header`` run in parallel; once every one succeeded, ``body`` runs with the list of
    their results, in order, as its first argument: exactly once, however many workers finish members at
    the same moment.

    Example::

        handle = resq.chord(resize.s(img, w) for w in sizes), publish.s(img)).delay()
        handle.result(timeout=60)          # publish's result

    A member that ends dead (or cancelled, or expired) ends the callback ``dead`` with a ``ParentFailed``
    error, without running it (``resq dead retry`` runs it with None for the members that failed).

    Raises:
        ConfigError: no member, a member or a body that is not a signature, or signatures of different apps.
    """
    return Chord(header if isinstance(header, Group) else Group(list(header)), body)


class Chord:
    """A group and the callback that receives its results (see :func:`chord`)."""

    def __init__(self, header: Group, body: Signature) -> None:
        if not isinstance(body, Signature):
            raise ConfigError(f"a chord's callback is a signature (task.s(...)), got {body!r}")
        _checked([*header.steps, body], "chord", "resq.chord(resize.s(x) for x in items), done.s())")
        self.header, self.body = header, body

    def delay(self) -> ChordResult:
        """Store the callback (deferred), then enqueue the members; returns a handle on them all."""
        app, body = self.body.app, self.body
        if app.inline is not None:
            return self._eager()
        chord_id = new_job_id()
        meta = {} if body.immutable else {CHORD_META: chord_id}  # made with .si(): it ignores the results
        queue, job = prepare_callback(app, body.task, body.args, body.kwargs, body.queue, chord_id, meta)
        app.broker.workflows.open(
            chord_id,
            "chord",
            policy="fail",
            is_open=True,
            keep_ms=_keep_ms(app),
            callbacks=[Callback("success", queue, job)],
        )
        steps = self.header.steps
        calls = (Call(s.task, s.args, s.kwargs, s.queue, 0, ((chord_id, i),)) for i, s in enumerate(steps))
        try:
            members = enqueue_many(app, calls)
        except BaseException:
            app.broker.jobs.cancel(queue, chord_id)  # the chord was not made whole: its callback never runs
            raise
        app.broker.workflows.close(chord_id)
        return ChordResult(app, members, Job(app, chord_id, queue, task=body.task))

    apply_async = delay

    def _eager(self) -> ChordResult:
        """Eager mode: the members run here, then the callback with their results (if they all succeeded)."""
        app, body = self.body.app, self.body
        members = self.header.delay()
        statuses = [job.status() for job in members.jobs]
        if all(status == JobStatus.SUCCEEDED for status in statuses):
            results = [job.result() for job in members.jobs]
            callback = enqueue(app, body.task, body.led_by(results), body.kwargs, queue=body.queue).job
        else:
            callback = Job(app, new_job_id(), body.queue, task=body.task)
        return ChordResult(app, members.jobs, callback)


class ChordResult(GroupResult):
    """A handle on a chord: its members (:class:`GroupResult`) and its callback (``callback``)."""

    def __init__(self, app: Resq, jobs: list[Job[Any]], callback: Job[Any]) -> None:
        super().__init__(app, jobs)
        self.callback = callback

    @property
    def id(self) -> str:
        """The chord's id: its callback's job id."""
        return self.callback.id

    def result(self, timeout: float | None = None) -> Any:
        """The callback's result, once it ran.

        Raises:
            JobFailed: the callback failed, or a member did (``ParentFailed``: the callback did not run).
            ResultTimeout: not within ``timeout`` seconds.
        """
        return self.callback.result(timeout=timeout)


@dataclass(frozen=True)
class BatchStatus:
    """A batch (or any join) as it stands: its jobs by status, its callbacks, whether it is still open
    (its ``with`` block runs)."""

    id: str
    kind: str
    total: int
    succeeded: int
    failed: int
    open: bool
    description: str
    created_ms: int
    #: job id -> status (``pending`` until it ends), in the order the jobs were made
    jobs: dict[str, str]
    #: role (``success``, ``complete``) -> (job id, queue) of each callback
    callbacks: dict[str, tuple[str, str]]
    #: roles whose callback was released (or ended by the policy)
    fired: tuple[str, ...] = ()

    @property
    def pending(self) -> int:
        """Jobs that have not ended."""
        return self.total - self.succeeded - self.failed

    @property
    def complete(self) -> bool:
        """Whether every job ended (and the batch is closed)."""
        return not self.open and self.pending == 0

    def as_dict(self) -> dict[str, Any]:
        """What a batch callback receives as its first argument."""
        return {
            "id": self.id,
            "total": self.total,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "pending": self.pending,
            "description": self.description,
        }


def batch_status(app: Resq, join_id: str) -> BatchStatus | None:
    """The status of a batch, a chord or a job's ``depends_on`` by id (a chord's and a dependent job's id
    are their callback's); None when unknown or expired."""
    record = app.broker.workflows.record(join_id)
    if record is None:
        return None
    f = record.fields
    return BatchStatus(
        id=join_id,
        kind=f.get("kind", ""),
        total=int(f.get("total", 0)),
        succeeded=int(f.get("succeeded", 0)),
        failed=int(f.get("failed", 0)),
        open=f.get("open") == "1",
        description=f.get("description", ""),
        created_ms=int(f.get("created_ms", 0)),
        jobs=dict(sorted(record.members.items())),  # ids sort in the order their jobs were made
        callbacks=record.callbacks,
        fired=tuple(role for role in ("success", "complete") if f"fired:{role}" in f),
    )


class Batch:
    """Jobs enqueued together, with callbacks when they are all done (Sidekiq Pro's batches).

    Use ``with app.batch(on_success=..., on_complete=...) as batch:``; every job enqueued inside joins
    the batch, and so does every job those jobs enqueue while they run (nested work). ``on_success`` runs
    once when every job succeeded, ``on_complete`` once when every job ended (succeeded, dead, cancelled
    or expired); each receives the batch's counts (:meth:`BatchStatus.as_dict`) as its first argument.
    A job that ends dead holds ``on_success`` back until it is retried and succeeds.
    """

    def __init__(
        self,
        app: Resq,
        on_success: Signature | None = None,
        on_complete: Signature | None = None,
        *,
        description: str = "",
    ) -> None:
        for callback in (on_success, on_complete):
            if callback is not None and not isinstance(callback, Signature):
                raise ConfigError(f"a batch's callbacks are signatures (task.s(...)), got {callback!r}")
        self.app, self.on_success, self.on_complete = app, on_success, on_complete
        self.description = description
        self.id = new_job_id()
        self._token: Any = None
        self._scope = BatchScope(self.id)

    def __enter__(self) -> Batch:
        if self.app.inline is None:
            callbacks = [
                self._callback(role, sig)
                for role, sig in (("success", self.on_success), ("complete", self.on_complete))
                if sig is not None
            ]
            self.app.broker.workflows.open(
                self.id,
                "batch",
                policy="wait",
                is_open=True,
                keep_ms=_keep_ms(self.app),
                callbacks=callbacks,
                description=self.description,
            )
        self._token = _batch.set(self._scope)
        return self

    def __exit__(self, *exc: object) -> None:
        _batch.reset(self._token)
        if self.app.inline is None:
            self.app.broker.workflows.close(self.id)
        else:
            self._eager_callbacks()

    def _eager_callbacks(self) -> None:
        """Eager mode: the batch's jobs ran already; call its callbacks with their counts."""
        jobs = {job.id: str(job.status()) for job in self._scope.eager_jobs}
        succeeded = sum(1 for status in jobs.values() if status == JobStatus.SUCCEEDED)
        status = BatchStatus(
            id=self.id,
            kind="batch",
            total=len(jobs),
            succeeded=succeeded,
            failed=len(jobs) - succeeded,
            open=False,
            description=self.description,
            created_ms=0,
            jobs=jobs,
            callbacks={},
        )
        for sig, due in ((self.on_success, succeeded == len(jobs)), (self.on_complete, True)):
            if sig is not None and due:
                enqueue(self.app, sig.task, sig.led_by(status.as_dict()), sig.kwargs, queue=sig.queue)

    def _callback(self, role: str, sig: Signature) -> Callback:
        callback_id = new_job_id()
        meta = {} if sig.immutable else {BATCH_CALLBACK_META: self.id}  # made with .si(): no counts
        queue, job = prepare_callback(self.app, sig.task, sig.args, sig.kwargs, sig.queue, callback_id, meta)
        return Callback(role, queue, job)

    def status(self) -> BatchStatus | None:
        """The batch's counts and jobs (None: its record expired)."""
        return batch_status(self.app, self.id)


def enqueue_dependent(
    app: Resq,
    task: str,
    args: Sequence[Any],
    kwargs: dict[str, Any] | None,
    *,
    queue: str,
    parents: Sequence[Job[Any] | str],
    policy: str,
    job_id: str | None = None,
    **flow_options: Any,
) -> Job[Any]:
    """A job that waits for ``parents`` (``apply_async(depends_on=...)``): stored ``deferred`` and queued
    once every parent succeeded; when one ends otherwise, ``policy`` decides: ``fail`` (the job ends dead
    with a ``ParentFailed`` error, without running), ``cancel`` (it ends cancelled) or ``run`` (it runs
    once every parent ended).

    Raises:
        ConfigError: an unknown policy, no parent, a parent not found, a job id taken by a live job.
        CycleError: the job would wait for itself.
    """
    if policy not in ("fail", "cancel", "run"):
        raise ConfigError(f"on_parent_failure must be 'fail', 'cancel' or 'run', got {policy!r}")
    refs = [_parent(app, parent) for parent in parents]
    if not refs:
        raise ConfigError("depends_on needs at least one job (a Job handle or a job id)")
    job_id = job_id or new_job_id()
    if any(ref[0] == job_id for ref in refs):
        raise CycleError(f"depends_on would make a cycle: job {job_id!r} would wait for itself")
    if app.inline is not None:
        return _eager_dependent(app, task, args, kwargs, queue, refs, policy, job_id, flow_options)
    target, job = prepare_callback(app, task, args, kwargs, queue, job_id, None, **flow_options)
    app.broker.workflows.open(
        job_id,
        "deps",
        policy=policy,
        is_open=False,
        keep_ms=_keep_ms(app),
        callbacks=[Callback("success", target, job)],
        parents=refs,
    )
    return Job(app, job_id, target, task=task)


def _parent(app: Resq, parent: Job[Any] | str) -> tuple[str, str]:
    """A parent as ``(job id, queue)``."""
    if isinstance(parent, Job):
        return parent.id, parent.queue
    if isinstance(parent, str):
        queue = app.job_store.find_queue(parent)
        if queue is None:
            raise ConfigError(
                f"depends_on: job {parent!r} not found (never enqueued, or it ended and its record expired)"
            )
        return parent, queue
    raise ConfigError(f"depends_on takes Job handles or job ids, got {parent!r}")


def _eager_dependent(
    app: Resq,
    task: str,
    args: Sequence[Any],
    kwargs: dict[str, Any] | None,
    queue: str,
    refs: list[tuple[str, str]],
    policy: str,
    job_id: str,
    flow_options: dict[str, Any],
) -> Job[Any]:
    """Eager mode: the parents ran already; the job runs now if they all succeeded (or by the policy)."""
    statuses = [app.job_store.status(q, parent_id) for parent_id, q in refs]
    if any(status is None for status in statuses):
        missing = next(ref[0] for ref, status in zip(refs, statuses, strict=True) if status is None)
        raise ConfigError(f"depends_on: job {missing!r} not found")
    if policy == "run" or all(status == JobStatus.SUCCEEDED for status in statuses):
        return enqueue(app, task, args, kwargs, queue=queue, job_id=job_id, **flow_options).job
    return Job(app, job_id, queue, task=task)


def _keep_ms(app: Resq) -> int:
    """How long a join's record stays once every member ended: as long as a finished job's record."""
    s = app.settings
    return int(max(to_seconds(s.result_ttl), to_seconds(s.dead_ttl)) * 1000)


#: How often a handle looks whether a step's job exists yet, in seconds.
STEP_LOOK_S = 0.02


def _now() -> float:
    return time.monotonic()


def _sleep(seconds: float) -> None:
    time.sleep(seconds)
