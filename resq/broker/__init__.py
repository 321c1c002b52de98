"""The one door to Redis: the only package of resq that imports ``redis`` or sends a command.

Everything above it deals in job ids, queue names and encoded bytes. A :class:`Broker` is a facade over
parts held as attributes, one per concern::

    broker.queues    enqueue, fetch, start, record outcomes, release leases, promote   (queues.py)
    broker.unique    the enqueue of unique and debounced tasks                          (unique.py)
    broker.jobs      a job's record, history, end, cancellation; the dead sets          (jobs.py)
    broker.workers   registry, heartbeats, remote commands                              (workers.py)
    broker.stats     counters and the duration histogram                                (stats.py)
    broker.admin     the operator's reads and repairs                                   (admin.py)
    broker.workflows joins: chords, batches, depends_on                                 (workflows.py)
    broker.resque    the Resque family's wire format (Ruby, PHP, node workers)          (resque.py)

All of them share one :class:`~resq.broker.connection.Connection` (the client, the Lua script loader,
the error boundary); key names are built in :mod:`resq.broker.keys`; each state transition is one Lua
script in ``resq/broker/lua``. Redis errors leave the package as ``BrokerUnavailable`` or
``BrokerError``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from resq.broker.admin import Admin
from resq.broker.connection import Connection, ScriptSource, Subscription
from resq.broker.jobs import Jobs
from resq.broker.keys import Keys
from resq.broker.queues import GROUP, Queues
from resq.broker.resque import ResqueWire
from resq.broker.stats import COUNTERS, DURATION_BUCKETS_MS, Stats
from resq.broker.unique import Unique
from resq.broker.workers import Workers
from resq.broker.workflows import Workflows
from resq.settings import Settings

__all__ = ["COUNTERS", "DURATION_BUCKETS_MS", "GROUP", "SCRIPT_NAMES", "Broker", "Keys", "ScriptSource", "Subscription"]

#: Every transition script under ``resq/broker/lua``.
SCRIPT_NAMES = (
    "enqueue",
    "start",
    "succeed",
    "retry",
    "dead",
    "promote",
    "run_now",
    "release",
    "cancel",
    "cancelled",
    "revive",
    "purge",
    "wait",
    "unique",
    "progress",
    "group_enqueue",
    "take",
    "group_resume",
    "defer",
    "join",
    "join_add",
    "join_close",
    "attach",
    "settle",
    "deferred",
    "handed_off",
    "resque_take",
    "resque_promote",
)

T = TypeVar("T")


class Broker:
    """Redis-side operations on queues, jobs and workers for one app.

    Args:
        settings: the app's settings (url, namespace, limits, timeouts).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = Keys(settings.namespace)
        self.connection = Connection(settings)
        header = f"local RESQ_GROUP = '{GROUP}'"
        prelude = ["_lib.lua", "_groups.lua", "_workflow.lua"]
        self.connection.add_scripts(ScriptSource("resq.broker", SCRIPT_NAMES, prelude=prelude, header=header))
        self.stats = Stats(self.connection, self.keys)
        self.queues = Queues(self.connection, self.keys, self.stats)
        self.unique = Unique(self.connection, self.keys, self.queues)
        self.jobs = Jobs(self.connection, self.keys, self.queues)
        self.workers = Workers(self.connection, self.keys)
        self.admin = Admin(self.connection, self.keys)
        self.workflows = Workflows(self.connection, self.keys, self.queues)
        self.resque = ResqueWire(self.connection, self.keys)

    def close(self) -> None:
        """Close the connections of this process (a new pool is made on next use)."""
        self.connection.close()

    async def aclose(self) -> None:
        """Close the running event loop's ``redis.asyncio`` client (``async`` producers' connections)."""
        await self.connection.aclose()

    def reset_after_fork(self) -> None:
        """Forget connections inherited from a parent process without closing the parent's sockets."""
        self.connection.reset_after_fork()

    def with_retry(self, operation: Callable[[], T], deadline_s: float | None = None) -> T:
        """Run ``operation`` (broker calls), retrying a lost connection for ``broker_retry_s``.

        Raises:
            BrokerUnavailable: Redis did not answer in time.
        """
        return self.connection.with_retry(operation, deadline_s)
