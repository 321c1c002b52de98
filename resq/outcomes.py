"""What moves between the broker and the worker: leases and the outcomes of attempts. Plain data."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Buried", "Cancelled", "Delivery", "Discarded", "Outcome", "Retried", "Started", "Succeeded"]


@dataclass(frozen=True)
class Delivery:
    """One stream entry handed to a worker: a lease on a job until it is settled."""

    queue: str
    entry: str
    #: the job id, or None when the entry is not a resq entry (then ``fields`` holds what it carried)
    job_id: str | None
    fields: dict[bytes, bytes]


@dataclass(frozen=True)
class Started:
    """The result of starting an attempt: the envelope to run, or why it must not run."""

    delivery: Delivery
    envelope: bytes | None
    attempt: int
    #: the status before the start: ``queued`` normally; ``cancelled``, ``succeeded``, ``dead`` or
    #: ``missing`` when the job must not run
    prior_status: str


@dataclass(frozen=True)
class Succeeded:
    """Outcome: the attempt returned ``result`` (encoded)."""

    delivery: Delivery
    job_id: str
    result: bytes
    ttl_ms: int
    duration_ms: int
    task: str = ""


@dataclass(frozen=True)
class Retried:
    """Outcome: the attempt failed and the job is due again at ``due_ms``."""

    delivery: Delivery
    job_id: str
    error: bytes
    due_ms: int
    duration_ms: int
    task: str = ""


@dataclass(frozen=True)
class Buried:
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


Outcome = Succeeded | Retried | Buried | Cancelled | Discarded
