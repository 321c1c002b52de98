"""The worker: a supervisor process, its children, and how each child performs jobs."""

from __future__ import annotations

from resq.worker.supervisor import Supervisor, WorkerConfig

__all__ = ["Supervisor", "WorkerConfig"]
