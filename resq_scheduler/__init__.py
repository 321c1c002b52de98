"""resq's scheduler: moves delayed jobs into their queues and fires periodic entries.

Periodic entries are cron expressions (evaluated in a time zone, DST included) or every-N-seconds
periods aligned on the Unix epoch, declared with ``@app.periodic(...)`` or in a TOML schedule file.
After downtime each entry follows its misfire policy: ``skip``, ``once`` (default) or ``all``.
"""

from __future__ import annotations

from resq_scheduler.cron import (
    DEFAULT_ALL_CAP,
    MISFIRE_POLICIES,
    CronSpec,
    EverySpec,
    Spec,
    due_ticks,
    next_fires,
    parse_spec,
    previous_at_or_before,
)
from resq_scheduler.schedule import PeriodicEntry, load_schedule_file
from resq_scheduler.scheduler import Scheduler, TickReport

__all__ = [
    "DEFAULT_ALL_CAP",
    "MISFIRE_POLICIES",
    "CronSpec",
    "EverySpec",
    "PeriodicEntry",
    "Scheduler",
    "Spec",
    "TickReport",
    "due_ticks",
    "load_schedule_file",
    "next_fires",
    "parse_spec",
    "previous_at_or_before",
]
