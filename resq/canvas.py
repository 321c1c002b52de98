"""Workflows: signatures, chains and groups (``docs/workflows.md``).

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
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from resq.errors import ConfigError, ResultTimeout
from resq.job import TERMINAL_STATUSES, Job, JobStatus, new_job_id
from resq.producer import Call, enqueue, enqueue_many

if TYPE_CHECKING:
    from resq.app import Resq

__all__ = [
    "CHAIN_META",
    "Chain",
    "ChainResult",
    "Group",
    "GroupProgress",
    "GroupResult",
    "Signature",
    "chain",
    "group",
]

#: The key of a job's ``meta`` that holds the steps of its chain after it.
CHAIN_META = "chain"


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


#: How often a handle looks whether a step's job exists yet, in seconds.
STEP_LOOK_S = 0.02


def _now() -> float:
    return time.monotonic()


def _sleep(seconds: float) -> None:
    time.sleep(seconds)
