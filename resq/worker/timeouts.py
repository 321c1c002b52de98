"""Time limits of one attempt: a soft limit raises ``SoftTimeout`` inside the task, a hard one stops it.

On the main thread both are driven by ``SIGALRM`` (which also interrupts ``time.sleep`` and blocking
I/O); on other threads the exception is injected asynchronously, which takes effect at the next
Python bytecode, so the supervisor kills the child as a backstop when a task cannot be interrupted.
"""

from __future__ import annotations

import ctypes
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from resq.errors import SoftTimeout
from resq.failures import TimeLimitExceeded

__all__ = ["interrupt_thread", "time_limits"]


def interrupt_thread(thread_id: int, exc_type: type[BaseException]) -> bool:
    """Raise ``exc_type`` in another thread at its next bytecode. Returns whether a thread was hit."""
    hit = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc_type))
    return bool(hit == 1)


@contextmanager
def time_limits(soft_s: float | None, hard_s: float | None) -> Iterator[None]:
    """Enforce the limits inside the block; a no-op with no limits or off the main thread."""
    if (soft_s is None and hard_s is None) or threading.current_thread() is not threading.main_thread():
        yield
        return
    soft_pending = soft_s is not None and (hard_s is None or soft_s < hard_s)

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        nonlocal soft_pending
        if soft_pending:
            soft_pending = False
            if hard_s is not None:
                signal.setitimer(signal.ITIMER_REAL, hard_s - (soft_s or 0.0))
            raise SoftTimeout(f"soft timeout after {soft_s:g} s")
        raise TimeLimitExceeded(hard_s or 0.0)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, soft_s if soft_pending and soft_s else (hard_s or 0.0))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
