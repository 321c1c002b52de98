"""The operator's view: the Inspector (reads and repairs, through the broker), its records, the metrics."""

from __future__ import annotations

from resq.ops.inspect import Inspector
from resq.ops.records import CONTROL_COMMANDS, DeadJob, QueueInfo, WorkerInfo, control_message, to_json

__all__ = ["CONTROL_COMMANDS", "DeadJob", "Inspector", "QueueInfo", "WorkerInfo", "control_message", "to_json"]
