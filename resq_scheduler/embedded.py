"""The scheduler ``resq worker --scheduler`` runs inside its supervisor, one pass at a time.

resq never imports this package: the supervisor finds :func:`embedded` through the ``resq.scheduler``
entry point. A pass is :meth:`Scheduler.tick`, the very code of ``resq scheduler``, so an embedded
scheduler is safe beside any number of standalone ones (every tick is fired exactly once).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from resq.app import Resq
from resq_scheduler.scheduler import BACKOFF_MAX_S, BACKOFF_MIN_S, Scheduler

__all__ = ["EmbeddedScheduler", "embedded"]


class EmbeddedScheduler:
    """Runs scheduler passes when due, for a loop that is not its own (a worker's supervisor).

    Args:
        app: the worker's app (its periodic entries, and those persisted in Redis, are fired).
    """

    def __init__(self, app: Resq) -> None:
        self.scheduler = Scheduler(app)
        self._due_at = 0.0
        self._backoff_s = BACKOFF_MIN_S

    def __call__(self) -> float:
        """Run a pass if one is due; returns the seconds until the next one is.

        A pass that fails (Redis away, a bug) is logged and retried after a growing pause; it never
        raises, except the ``BaseException`` of a signal handler that cuts it short.
        """
        now = time.monotonic()
        if now < self._due_at:
            return self._due_at - now
        try:
            report = self.scheduler.tick()
        except Exception as exc:
            self.scheduler.log_failure(exc, self._backoff_s)
            self._due_at, wait = now + self._backoff_s, self._backoff_s
            self._backoff_s = min(self._backoff_s * 2, BACKOFF_MAX_S)
            return wait
        self._backoff_s = BACKOFF_MIN_S
        wait = self.scheduler.seconds_until(report.next_wakeup)
        self._due_at = time.monotonic() + wait
        return wait


def embedded(app: Resq) -> Callable[[], float]:
    """The entry point behind ``resq worker --scheduler``: a pass to call from the supervisor's loop.

    Raises:
        ConfigError: a periodic entry names a task the app does not register.
    """
    return EmbeddedScheduler(app)
