"""Every Redis key resq uses, built in this one place.

Keys that belong to one queue share the queue's hash tag ``{ns:queue}``; keys that belong to no queue
share the namespace's ``{ns}``. Each Lua script therefore touches a single slot, which keeps Redis
Cluster open to us without changing the layout.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from resq.flow import GROUP_LEVEL, MAX_PRIORITY
from resq.settings import validate_name

__all__ = ["Keys", "ResqueKeys"]


class Keys:
    """Key names for one namespace.

    Args:
        namespace: the prefix of every key (default ``resq``).
    """

    def __init__(self, namespace: str = "resq") -> None:
        self.namespace = validate_name(namespace, "namespace")
        self._ns = "{" + namespace + "}"
        #: set of known queue names
        self.queues = f"{self._ns}:queues"
        #: zset worker id -> heartbeat deadline (ms): last heartbeat + 3 of that worker's intervals
        self.workers = f"{self._ns}:workers"
        #: hash worker id -> heartbeats counted (no expiry: a count lower than the last one read means Redis
        #: lost writes; a field goes when its worker stops or is confirmed dead)
        self.beats = f"{self._ns}:beats"
        #: hash entry name -> msgpack entry (periodic entries added at run time)
        self.cron = f"{self._ns}:cron"
        #: hash entry name -> last tick fired (ms)
        self.cron_last = f"{self._ns}:cron:last"
        #: set of paused cron entry names
        self.cron_paused = f"{self._ns}:cron:paused"
        #: pub/sub channel: a job was scheduled (payload: due time in ms)
        self.wakeup = f"{self._ns}:wakeup"
        #: pub/sub channel: remote control of workers
        self.control = f"{self._ns}:control"
        #: hash target ("*" or a worker id) -> msgpack {"cmd", "at_ms"}: the last command for each target
        self.control_state = f"{self._ns}:control:state"
        #: pub/sub channel of lifecycle events (msgpack), for ``resq events``
        self.events = f"{self._ns}:events"

    def _q(self, queue: str) -> str:
        return "{" + self.namespace + ":" + queue + "}"

    def queue(self, queue: str, priority: int = 0) -> str:
        """The stream of jobs ready to run in ``queue``: its own for priority 0, one per other priority
        (``:queue:p5``), read highest first; ``GROUP_LEVEL`` names the stream grouped jobs are handed out
        through (``:queue:groups``)."""
        if priority == GROUP_LEVEL:
            return f"{self._q(queue)}:queue:groups"
        if priority:
            return f"{self._q(queue)}:queue:p{priority}"
        return f"{self._q(queue)}:queue"

    def priority_streams(self, queue: str) -> list[str]:
        """The stream of every priority of ``queue``, 0 first (the enqueue and promote scripts pick one)."""
        return [self.queue(queue, p) for p in range(MAX_PRIORITY + 1)]

    def levels(self, queue: str) -> str:
        """The set of priorities above 0 that jobs of ``queue`` were given (workers read their streams)."""
        return f"{self._q(queue)}:levels"

    def front(self, queue: str) -> str:
        """The stream of jobs given back to ``queue`` (their worker died or stopped), served before the
        queue's own stream: a recovered job goes to the front of its queue, not behind the backlog."""
        return f"{self._q(queue)}:front"

    def stream(self, queue: str, front: bool, priority: int = 0) -> str:
        """The front stream of ``queue`` or the stream of one of its priorities."""
        return self.front(queue) if front else self.queue(queue, priority)

    def streams(self, queue: str, levels: Iterable[int] | None = None) -> tuple[str, ...]:
        """The streams of ``queue`` in the order they are served: the front, the streams of its priorities
        above 0 (``levels``, highest first; None: every one, for a look at what may exist), then its own."""
        above = range(GROUP_LEVEL, 0, -1) if levels is None else sorted(levels, reverse=True)
        return (self.front(queue), *(self.queue(queue, p) for p in above), self.queue(queue))

    def groups(self, queue: str) -> list[str]:
        """The keys of the fair queuing of ``queue``'s groups, in the order the scripts take them
        (``_groups.lua``): the zset of grouped jobs waiting (``<group>|<id>`` -> virtual finish time), the
        hash group -> the last virtual time given, the hash group -> weight, the hash of paused groups,
        the zset of jobs of paused groups set aside, the queue's virtual clock, the hash id -> flow of
        grouped jobs, the doorbell flag, the stream grouped jobs are handed out through, the levels set,
        and the hash group -> its own limits (msgpack ``{"c": n, "r": [n, window ms]}``)."""
        tag = self._q(queue)
        return [
            self.grouped(queue),
            f"{tag}:groups:last",
            self.group_weights(queue),
            self.paused_groups(queue),
            self.grouped_held(queue),
            f"{tag}:grouped:clock",
            f"{tag}:grouped:flow",
            f"{tag}:grouped:bell",
            self.queue(queue, GROUP_LEVEL),
            self.levels(queue),
            self.group_limits(queue),
        ]

    def grouped(self, queue: str) -> str:
        """The zset of ``queue``'s grouped jobs waiting to be handed out (``<group>|<id>`` -> virtual time)."""
        return f"{self._q(queue)}:grouped"

    def grouped_held(self, queue: str) -> str:
        """The zset of the jobs of ``queue``'s paused groups, set aside with their virtual times."""
        return f"{self._q(queue)}:grouped:held"

    def group_weights(self, queue: str) -> str:
        """The hash group -> weight of ``queue``'s groups (1 when absent)."""
        return f"{self._q(queue)}:groups:weight"

    def paused_groups(self, queue: str) -> str:
        """The hash group -> when it was paused, of ``queue``'s paused groups."""
        return f"{self._q(queue)}:groups:paused"

    def group_limits(self, queue: str) -> str:
        """The hash group -> its own limits in ``queue`` (msgpack ``{"c": n, "r": [n, window ms]}``)."""
        return f"{self._q(queue)}:groups:limits"

    def slots(self, queue: str, key: str) -> str:
        """The zset of jobs running under concurrency key ``key`` (id -> start ms): its size is the count
        the limit holds. Freed by the script that records each one's outcome or gives its lease back."""
        return f"{self._q(queue)}:slots:{key}"

    def parked(self, queue: str, key: str) -> str:
        """The list of jobs waiting for a slot of concurrency key ``key`` (each: the entry fields to queue
        it with again), moved to the queue's front one at a time as slots free."""
        return f"{self._q(queue)}:parked:{key}"

    def rate(self, queue: str, key: str) -> str:
        """The zset of the starts of rate key ``key`` within its window (id -> start ms)."""
        return f"{self._q(queue)}:rate:{key}"

    def rate_next(self, queue: str, key: str) -> str:
        """When the next job held back by rate key ``key`` is due (ms): held-back jobs are spread over
        the window instead of all waking when it opens."""
        return f"{self._q(queue)}:rate:{key}:next"

    def broken(self, key: str, at_ms: int) -> str:
        """Where a key of the wrong type is set aside (``Admin.set_aside``): the same hash tag (so the
        rename stays in its slot), then ``broken:<ms>:`` and the rest of its name."""
        tag, brace, rest = key.partition("}")
        if not brace or not tag.startswith("{"):
            return f"{self._ns}:broken:{at_ms}:{key}"
        return f"{tag}}}:broken:{at_ms}{rest}"

    def job_prefix(self, queue: str) -> str:
        """The prefix of job hashes in ``queue`` (scripts append the id)."""
        return f"{self._q(queue)}:job:"

    def job(self, queue: str, job_id: str) -> str:
        """The hash holding one job's envelope, status, timestamps, error and result."""
        return f"{self._q(queue)}:job:{job_id}"

    def done(self, queue: str, job_id: str) -> str:
        """A list that receives one element when the job reaches a final state (wakes ``result()``)."""
        return f"{self._q(queue)}:done:{job_id}"

    def done_prefix(self, queue: str) -> str:
        """The prefix of ``done`` lists in ``queue`` (scripts append the id)."""
        return f"{self._q(queue)}:done:"

    def scheduled(self, queue: str) -> str:
        """The zset of delayed jobs and retries of ``queue``: id -> due time (ms)."""
        return f"{self._q(queue)}:scheduled"

    def dead(self, queue: str) -> str:
        """The capped zset of dead jobs of ``queue``: id -> time of death (ms)."""
        return f"{self._q(queue)}:dead"

    def handoff(self, queue: str) -> str:
        """The hash job id -> hand-off entry of the jobs of ``queue`` that ended as members of joins, until
        the entry is applied to each join (``_workflow.lua``, ``resq/broker/handoff.py``)."""
        return f"{self._q(queue)}:handoff"

    def cancel_requests(self, queue: str) -> str:
        """The set of running job ids in ``queue`` whose cancellation was asked for."""
        return f"{self._q(queue)}:cancel"

    def paused(self, queue: str) -> str:
        """Set (a string holding when, in ms) while ``queue`` is paused: no worker starts its jobs."""
        return f"{self._q(queue)}:paused"

    def worker(self, worker_id: str) -> str:
        """The hash describing one live worker (host, pid, queues, started, current jobs)."""
        return f"{self._ns}:worker:{worker_id}"

    def stat(self, name: str, day: date | None = None) -> str:
        """A counter: total when ``day`` is None, else for that UTC day."""
        if day is None:
            return f"{self._ns}:stat:{name}"
        return f"{self._ns}:stat:{name}:{day.isoformat()}"

    def stat_minutes(self, hour: int) -> str:
        """Hash ``"<counter>|<minute>"`` -> count, for the minutes (since the epoch) of one hour (``minute
        // 60``): processed and failed per minute, kept two hours."""
        return f"{self._ns}:stat:minutes:{hour}"

    def stat_waits(self, minute: int) -> str:
        """Hash ``"<queue>|<bucket>"`` -> jobs, for one minute (since the epoch): how long jobs that
        started in that minute had waited in their queue, by upper bound in ms (``WAIT_BUCKETS_MS``)."""
        return f"{self._ns}:stat:waits:{minute}"

    @property
    def stat_by_task(self) -> str:
        """Hash ``"<task>|<queue>|<counter>"`` -> count (processed, failed, retried, dead, cancelled)."""
        return f"{self._ns}:stat:by_task"

    @property
    def stat_durations(self) -> str:
        """Hash ``"<task>|<bucket upper bound ms or +Inf>"`` -> count, plus ``"<task>|sum_ms"``, ``"<task>|count"``."""
        return f"{self._ns}:stat:durations"

    def workflow(self, workflow_id: str) -> str:
        """The hash tag of one workflow's bookkeeping (a chord, a batch, a job's ``depends_on``): its keys
        share one slot, whatever queues its jobs are in."""
        return "{" + self.namespace + ":wf:" + workflow_id + "}"

    def join(self, workflow_id: str) -> str:
        """The hash of a join (``_workflow.lua``): its kind, whether it is still open, its counts (total,
        succeeded, failed), its failure policy and the callbacks it releases (``success``, ``complete``)."""
        return f"{self.workflow(workflow_id)}:join"

    def join_members(self, workflow_id: str) -> str:
        """The hash member job id -> its status in a join (``pending`` until it ends)."""
        return f"{self.workflow(workflow_id)}:members"

    def join_results(self, workflow_id: str) -> str:
        """The hash index -> result (msgpack, as the member stored it) of a chord's members."""
        return f"{self.workflow(workflow_id)}:results"

    def unique_lock(self, entry: str) -> str:
        """The job id of the last run of a ``unique`` periodic entry."""
        return f"{self._ns}:cron:unique:{entry}"

    def unique(self, queue: str, key: str) -> str:
        """The lock of a unique or debounced task's key ``key`` (its name, then ``:`` and its key function's
        value or its arguments' digest): a string naming the job that holds it (``unique.lua``)."""
        return f"{self._q(queue)}:unique:{key}"


class ResqueKeys:
    """The key names of the Resque family under ``namespace`` (values never carry the namespace)."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace

    @property
    def queues(self) -> str:
        """Set of queue names."""
        return f"{self.namespace}:queues"

    def queue(self, name: str) -> str:
        """List of job JSON: ``RPUSH`` to enqueue, the front is taken first."""
        return f"{self.namespace}:queue:{name}"

    @property
    def delayed_schedule(self) -> str:
        """Zset of the whole-second timestamps that have delayed jobs (member = score)."""
        return f"{self.namespace}:delayed_queue_schedule"

    def delayed(self, timestamp: int) -> str:
        """List of the delayed items due at ``timestamp`` (whole seconds)."""
        return f"{self.namespace}:{self.delayed_member(timestamp)}"

    @staticmethod
    def delayed_member(timestamp: int) -> str:
        """``delayed:<ts>``, as the ``timestamps:`` sets name a delayed list (without the namespace)."""
        return f"delayed:{timestamp}"

    def schedule(self, php: bool = False) -> str:
        """The zset of the seconds that have delayed jobs: resque-scheduler's, or (``php``)
        php-resque-ex-scheduler's (CakeResque's), ``_schdlr_``."""
        return f"{self.namespace}:_schdlr_" if php else self.delayed_schedule

    def second(self, timestamp: int, php: bool = False) -> str:
        """The list of the delayed items due at ``timestamp``: resque-scheduler's, or (``php``)
        php-resque-ex-scheduler's, ``_schdlr_:<ts>``."""
        return f"{self.namespace}:_schdlr_:{timestamp}" if php else self.delayed(timestamp)

    def timestamps(self, item: str) -> str:
        """Set of the ``delayed:<ts>`` lists that hold ``item`` (resque-scheduler's reverse index)."""
        return f"{self.namespace}:timestamps:{item}"

    def status(self, job_id: str) -> str:
        """php-resque's job status (JSON ``{status, updated, started}``; 1 waiting ... 4 complete)."""
        return f"{self.namespace}:job:{job_id}:status"

    @property
    def failed(self) -> str:
        """List of failure records (JSON ``{failed_at, payload, exception, error, backtrace, worker, queue}``)."""
        return f"{self.namespace}:failed"

    @property
    def workers(self) -> str:
        """Set of the ids of live workers (``host:pid:queue,queue``)."""
        return f"{self.namespace}:workers"

    def worker_started(self, worker_id: str) -> str:
        """When worker ``worker_id`` started (text)."""
        return f"{self.namespace}:worker:{worker_id}:started"

    @property
    def heartbeats(self) -> str:
        """Hash worker id -> its last heartbeat (ISO 8601), which Ruby Resque prunes dead workers by."""
        return f"{self.namespace}:workers:heartbeat"

    def stat(self, name: str, worker_id: str | None = None) -> str:
        """Counter ``processed`` or ``failed``, of all workers or of ``worker_id``."""
        return f"{self.namespace}:stat:{name}" if worker_id is None else f"{self.namespace}:stat:{name}:{worker_id}"

    def in_flight(self, worker_id: str) -> str:
        """resq's own: hash number -> ``queue\\npayload`` of the jobs resq worker ``worker_id`` took from
        Resque queues and has not yet made resq jobs of (``resque_take.lua``)."""
        return f"{self.namespace}:resq:in-flight:{worker_id}"

    @property
    def in_flight_owners(self) -> str:
        """resq's own: zset of the workers with in-flight hashes, by when each counts as dead (ms)."""
        return f"{self.namespace}:resq:in-flight"

    @property
    def sequence(self) -> str:
        """resq's own: the counter numbering the jobs resq workers take (the resq job ``<ns>:<number>``)."""
        return f"{self.namespace}:resq:sequence"
