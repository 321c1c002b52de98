"""Helpers for testing code that uses resq: run the queued jobs in this process, against a real Redis.

Example::

    def test_signup_sends_a_welcome_mail(app):
        signup("ada@example.com")            # calls send_welcome.delay(...)
        assert resq.testing.drain(app) == 1   # performs it here, with hooks, retries and results
        assert outbox == ["ada@example.com"]
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence

from resq.app import Resq
from resq.worker.consumer import Consumer

__all__ = ["drain"]


def drain(app: Resq, queues: Sequence[str] | None = None, *, prefetch: int = 100) -> int:
    """Perform the jobs of ``queues`` in this process until the queues are empty.

    Jobs run exactly as in a worker (hooks, time limits, retries, results, dead set), one after the
    other. Retries and delayed jobs due within 10 seconds are waited for, like ``resq worker --burst``.

    Args:
        app: the app whose tasks may run.
        queues: the queues to drain, in priority order (default: every queue of the app's tasks).
        prefetch: jobs leased per fetch.

    Returns:
        How many jobs were performed.
    """
    names = list(queues) if queues else sorted({task.queue for task in app.tasks.values()} or {"default"})
    worker_id = f"testing:{os.getpid()}:{secrets.token_hex(3)}"
    broker = app.broker
    broker.queues.ensure_groups(names)
    broker.workers.register(worker_id, {"host": "testing", "pid": str(os.getpid()), "queues": ",".join(names)})
    consumer = Consumer(app, worker_id, names, prefetch=prefetch, burst=True)
    try:
        consumer.run()
    finally:
        broker.workers.unregister([worker_id])
        for name in names:
            broker.queues.forget_consumer(name, worker_id)
    return consumer.state.processed
