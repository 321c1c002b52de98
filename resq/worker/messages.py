"""What a consumer tells its child: which job each of its threads begins and ends.

The child shows them to its supervisor on the shared board (:mod:`resq.worker.board`); nothing is sent
per job between the processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from resq.outcomes import Delivery

__all__ = ["ChildMessage", "JobBegan", "JobEnded"]


@dataclass(frozen=True)
class _JobReport:
    queue: str
    entry: str
    #: None for a foreign stream entry (never reported today, but a Delivery allows it)
    job_id: str | None
    #: ident of the child's thread that runs the job
    thread: int
    #: the entry is in the queue's front stream
    front: bool = False
    #: the priority whose stream holds the entry
    priority: int = 0

    @classmethod
    def of(cls, delivery: Delivery, thread: int) -> Self:
        """The report of ``delivery`` running on ``thread`` (its fields stay behind)."""
        return cls(delivery.queue, delivery.entry, delivery.job_id, thread, delivery.front, delivery.priority)

    @property
    def delivery(self) -> Delivery:
        """The delivery reported, without its fields (the supervisor needs queue, entry, id and stream)."""
        return Delivery(self.queue, self.entry, self.job_id, {}, self.front, self.priority)


@dataclass(frozen=True)
class JobBegan(_JobReport):
    """A thread of the child began an attempt of a job."""


@dataclass(frozen=True)
class JobEnded(_JobReport):
    """A thread of the child finished an attempt (whatever its outcome)."""


#: Every message a child sends to its supervisor.
ChildMessage = JobBegan | JobEnded
