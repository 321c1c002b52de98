"""The banner ``resq worker`` prints as it starts: where it connects, what it serves, which tasks it knows."""

from __future__ import annotations

import os
import socket
from typing import Any

from resq import __version__
from resq.app import Resq
from resq.resque import DEFAULT_NAMESPACE
from resq.task import Task
from resq.worker.supervisor import WorkerConfig

__all__ = ["banner"]


def banner(app: Resq, config: WorkerConfig) -> str:
    """The text of the worker's start-up banner (no trailing newline), as Celery users expect one.

    It names the Redis url (password masked), the namespace, the queues in priority order, the
    processes, threads and prefetch, and every registered task; a task routed to a queue this worker
    does not serve is marked, since this worker will never run it.
    """
    lines = [
        f"resq {__version__} worker on {socket.gethostname()} (pid {os.getpid()})",
        "",
        "[config]",
        *(f"  .> {key + ':':<13}{value}" for key, value in _settings(app, config)),
        "",
        f"[tasks] ({len(app.tasks)})",
        *_tasks(app, config),
    ]
    return "\n".join(lines)


def _settings(app: Resq, config: WorkerConfig) -> list[tuple[str, str]]:
    processes = _plural(config.concurrency, "process", "processes")
    threads = _plural(config.threads, "thread", "threads")
    rows = [
        ("redis", app.broker.connection.safe_url()),
        ("namespace", app.settings.namespace),
        ("queues", ", ".join(config.queues) + (" (in priority order)" if len(config.queues) > 1 else "")),
        ("concurrency", f"{processes} x {threads} each, prefetch {config.prefetch or 'adaptive'}"),
    ]
    if config.burst:
        rows.append(("burst", "on: exits once the queues are empty"))
    if config.resque_queues:
        namespace = config.resque_namespace or DEFAULT_NAMESPACE
        rows.append(("resque", f"{', '.join(config.resque_queues)} (namespace {namespace}, into resq's queues)"))
    if config.scheduler:
        entries = _plural(len(app.periodic_entries), "periodic entry", "periodic entries")
        rows.append(("scheduler", f"embedded ({entries} in code)"))
    return rows


def _tasks(app: Resq, config: WorkerConfig) -> list[str]:
    if not app.tasks:
        return ["  (none)"]
    served = set(config.queues)
    return [f"  . {name}" + _note(task, served, bool(config.resque_queues)) for name, task in sorted(app.tasks.items())]


def _note(task: Task[Any, Any], served: set[str], resque: bool) -> str:
    """What the banner says after a task's name: its Resque class, or that its queue is not served."""
    if resque and task.options.resque_class:
        return f"  (Resque class {task.options.resque_class!r})"
    return "" if task.queue in served else f"  (queue {task.queue!r}: not served here)"


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"
