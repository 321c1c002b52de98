"""What moves between the broker and the worker: leases and the outcomes of attempts. Plain data."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from resq.flow import Flow
from resq.job import ACTIVE_STATUSES, JobStatus

__all__ = [
    "TALLIES",
    "Cancelled",
    "Dead",
    "Delivery",
    "Discarded",
    "Held",
    "Lost",
    "NextStep",
    "Outcome",
    "Retried",
    "Started",
    "Succeeded",
]


@dataclass(frozen=True)
class Delivery:
    """One stream entry handed to a worker: a lease on a job until its outcome is recorded."""

    queue: str
    entry: str
    #: the job id, or None when the entry is not a resq entry (then ``fields`` holds what it carried)
    job_id: str | None
    fields: dict[bytes, bytes]
    #: the entry is in the queue's front stream (a job given back, served before the queue's backlog)
    front: bool = False
    #: the priority whose stream holds the entry (0: the queue's own stream; unused for the front)
    priority: int = 0
    #: when a worker's read took the entry (ms; 0 when not known): with the entry id's time, how long
    #: the job waited in its queue (not part of the lease's identity)
    fetched_ms: int = field(default=0, compare=False)

    @functools.cached_property
    def flow(self) -> Flow:
        """The job's flow control, as its entry carries it (none for an entry without a ``flow`` field),
        decoded once: the start and the outcome of a lease both name its keys."""
        return Flow.unpacked(self.fields.get(b"flow"))

    @property
    def foreign(self) -> bool:
        """Whether the entry is not a resq job (something else wrote to the stream)."""
        return self.job_id is None


@dataclass(frozen=True)
class Started:
    """The result of starting an attempt: the envelope to run, or why it must not run."""

    delivery: Delivery
    envelope: bytes | None
    attempt: int
    #: the status before the start: ``queued`` normally; ``cancelled``, ``succeeded`` or ``dead`` when
    #: the job must not run; None when its record is gone, the entry is foreign, or the entry is not the
    #: job's current one (a stale duplicate of a job given back under a new entry)
    prior: JobStatus | None
    #: the record is gone but the entry still waited in its stream: something deleted the job under it
    orphan: bool = False
    #: outcomes recorded with this start that were refused as stale (their worker's lease was given back)
    refused: tuple[Outcome, ...] = ()
    #: why the job's flow control held it back instead of starting it: ``expired``, ``parked`` (its
    #: concurrency key's slots are taken) or ``throttled`` (its rate window is full); None: not held
    held: str | None = None

    @property
    def runnable(self) -> bool:
        """Whether the attempt may run (the job was still waiting or running, not final, gone or held)."""
        return self.held is None and self.prior in ACTIVE_STATUSES


#: The key of a running job's ``options`` where an ``on_success`` hook lists other counters (Redis keys)
#: its success adds one to, sent with resq's own counters (``Succeeded.tallies``).
TALLIES = "tallies"


@dataclass(frozen=True)
class Succeeded:
    """Outcome: the attempt returned ``result`` (encoded)."""

    delivery: Delivery
    job_id: str
    result: bytes
    ttl_ms: int
    duration_ms: int
    task: str = ""
    #: the next step of its chain, created with this success: its queue, id, task, encoded envelope,
    #: priority and packed flow (None: the job is no chain's step, or its last)
    then: NextStep | None = None
    #: other counters (keys) this success adds one to, summed with resq's own: those an ``on_success``
    #: hook listed in the job's ``options[TALLIES]`` (the Resque family's ``stat:processed``)
    tallies: tuple[str, ...] = ()


@dataclass(frozen=True)
class NextStep:
    """A chain's next job, as the ``succeed`` script creates it (``resq/canvas.py``)."""

    queue: str
    job_id: str
    task: str
    envelope: bytes
    priority: int = 0
    flow: bytes = b""
    #: the joins it is a member of (the batch of the chain's first step), packed; empty: none
    joins: bytes = b""


@dataclass(frozen=True)
class Retried:
    """Outcome: the attempt failed and the job is due again at ``due_ms``."""

    delivery: Delivery
    job_id: str
    error: bytes
    due_ms: int
    duration_ms: int
    task: str = ""
    #: the task asked to run later (``Snooze``, ``RateLimited``): no attempt counts, no failure
    snoozed: bool = False


@dataclass(frozen=True)
class Held:
    """Outcome: the start script held the job back (``Started.held``) and recorded it; nothing more to
    write. An ``expired`` job counts as expired."""

    delivery: Delivery
    job_id: str
    held: str
    task: str = ""


@dataclass(frozen=True)
class Dead:
    """Outcome: the job is dead (``raw`` keeps an undecodable payload that had no job record)."""

    delivery: Delivery
    job_id: str
    error: bytes
    duration_ms: int
    task: str = ""
    raw: bytes = b""
    #: True when the attempt ran and failed (counts as a failure), False for a job that never ran
    failed_attempt: bool = True


@dataclass(frozen=True)
class Lost:
    """Outcome: the process running the attempt died (killed, crashed, or silent for three heartbeats).

    The job goes back to its queue at once, or is dead once it lost its worker ``max_worker_losses``
    times (``final``); the ``release`` script decides, this record says what was expected.
    """

    delivery: Delivery
    job_id: str
    error: bytes
    duration_ms: int
    task: str = ""
    final: bool = False


@dataclass(frozen=True)
class Cancelled:
    """Outcome: the job was cancelled (or skipped by a hook) instead of finishing."""

    delivery: Delivery
    job_id: str
    reason: str
    task: str = ""


@dataclass(frozen=True)
class Discarded:
    """Outcome: the entry is dropped without touching the job (finished by an earlier delivery)."""

    delivery: Delivery
    job_id: str = ""
    task: str = ""


Outcome = Succeeded | Retried | Dead | Lost | Cancelled | Discarded | Held
