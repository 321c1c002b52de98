"""The operator's side of resq: what ``resq stats``, ``resq dead …`` and the metrics endpoint show and do.

The logic lives here (which queues, in which order, as which records, with which checks); every read
and write goes through the broker's parts (:mod:`resq.broker`), so this module sends no command itself.

Example::

    from resq.ops import Inspector

    inspector = Inspector(app)
    for queue in inspector.queues():
        print(queue.name, queue.waiting, queue.oldest_age_s)
"""

from __future__ import annotations

import contextlib
import difflib
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from resq import producer
from resq.app import Resq
from resq.broker import COUNTERS, Broker, Subscription
from resq.broker.admin import BATCH
from resq.broker.connection import as_int, text
from resq.broker.stats import WAIT_BUCKETS_MS
from resq.canvas import CHAIN_META, batch_status
from resq.clock import due_time_ms, from_ms, now_ms, to_ms
from resq.codec import decode_envelope, decode_event, pack, shown, unpack
from resq.errors import BrokerUnavailable, ConfigError, DecodeError, UnknownJob
from resq.job import Job, JobStatus, describe
from resq.ops.records import (
    CONTROL_COMMANDS,
    DeadJob,
    QueuedJob,
    QueueInfo,
    ScheduledInfo,
    TaskInfo,
    WorkerInfo,
    control_message,
    describe_backoff,
    read_command,
    to_json,
)
from resq.sealing import keyring
from resq.settings import validate_name
from resq.task import redact

__all__ = [
    "BATCH",
    "CONTROL_COMMANDS",
    "COUNTERS",
    "DEAD_FILTER_WINDOW",
    "DeadJob",
    "Inspector",
    "QueueInfo",
    "QueuedJob",
    "ScheduledInfo",
    "TaskInfo",
    "WorkerInfo",
    "control_message",
    "to_json",
]


#: The minutes over which the wait in each queue (p50, p99) is measured.
WAIT_WINDOW_MIN = 5

#: How many of the newest dead jobs of each queue a filtered listing (by task, by error type) looks at.
DEAD_FILTER_WINDOW = 1000

#: How many parents and children of a job ``resq job`` shows.
EDGES_SHOWN = 20
#: How many jobs of a batch ``resq batch`` shows.
BATCH_JOBS_SHOWN = 50

#: Where a queue's listing goes on: ``front:<entry id>`` or ``queue:<entry id>`` (:meth:`Inspector.queue_jobs`).
_CURSOR_STREAMS = {"front": True, "queue": False}


def percentile(histogram: dict[str, int], q: float) -> int | None:
    """The ``q`` quantile (0..1) of a histogram ``{upper bound ms or "+Inf": count}``, as the upper bound
    of the bucket it falls in (None when the histogram is empty; the largest finite bound for "+Inf")."""
    bounds = sorted((float(b), n) for b, n in histogram.items() if n > 0)
    total = sum(n for _, n in bounds)
    if not total:
        return None
    seen = 0
    for bound, n in bounds:
        seen += n
        if seen >= q * total:
            return int(bound) if bound != float("inf") else int(max(WAIT_BUCKETS_MS))
    return int(max(WAIT_BUCKETS_MS))


class Inspector:
    """Reads and repairs what one app keeps in Redis.

    Args:
        app: the app (its settings and namespace).
        broker: the broker to use (default: the app's; the metrics server passes its own).
    """

    def __init__(self, app: Resq, broker: Broker | None = None) -> None:
        self.app = app
        self._broker = broker

    @property
    def broker(self) -> Broker:
        """The broker given, else the app's current one (an app reconfigured after this was made, as a
        dashboard mounted at import and pointed at its Redis later, is followed)."""
        return self._broker or self.app.broker

    # -- queues -----------------------------------------------------------------------------------

    def queue_names(self) -> list[str]:
        """Every queue known in this namespace, sorted."""
        return self.broker.with_retry(self.broker.queues.known)

    def queues(self) -> list[QueueInfo]:
        """Each known queue: waiting, running, age of the oldest waiting job, scheduled, dead, workers, and
        the rate it drains at (jobs started per second over the last ``WAIT_WINDOW_MIN`` minutes)."""
        names = self.queue_names()
        if not names:
            return []
        serving = self._serving_counts()
        sizes = self.broker.admin.queue_sizes(names)
        paused = self.broker.queues.paused(names)
        waits = self.broker.stats.waits(WAIT_WINDOW_MIN)
        now = now_ms()
        window_s = (WAIT_WINDOW_MIN - 1) * 60 + (now // 1000) % 60 + 1  # the current minute is under way
        found = []
        for name, (length, scheduled, dead) in zip(names, sizes, strict=True):
            running, oldest_ms = self.broker.admin.lease_state(name)
            found.append(
                QueueInfo(
                    name=name,
                    waiting=max(0, length - running),
                    running=running,
                    oldest_age_s=None if oldest_ms is None else max(0.0, (now - oldest_ms) / 1000),
                    scheduled=scheduled,
                    dead=dead,
                    workers=serving.get(name, 0),
                    paused=name in paused,
                    wait_p50_ms=percentile(waits.get(name, {}), 0.50),
                    wait_p99_ms=percentile(waits.get(name, {}), 0.99),
                    drain_per_s=round(sum(waits.get(name, {}).values()) / window_s, 3),
                )
            )
        return found

    def pause_queue(self, queue: str) -> None:
        """Pause ``queue`` for every worker: its jobs stay queued, no worker starts one (a worker that took
        one hands it back to the front), until :meth:`resume_queue`."""
        validate_name(queue, "queue name")
        self.broker.queues.pause(queue)

    def resume_queue(self, queue: str) -> None:
        """Let workers start the jobs of ``queue`` again (within ``PAUSED_LOOK_S``, 1 s)."""
        validate_name(queue, "queue name")
        self.broker.queues.resume(queue)

    def per_minute(self, minutes: int = 60) -> dict[str, list[int]]:
        """Jobs processed and failed in each of the last ``minutes`` minutes, oldest first."""
        return self.broker.with_retry(lambda: self.broker.stats.per_minute(minutes))

    def _serving_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for worker in self.workers():
            for queue in worker.queues:
                counts[queue] = counts.get(queue, 0) + 1
        return counts

    def clear_queue(self, queue: str) -> int:
        """Delete the jobs of a queue's stream and scheduled set, with their records.

        Running jobs lose their records too (their workers' outcomes then change nothing). The stream
        and its consumer group stay, so workers serving the queue carry on. Dead jobs are kept.

        Returns:
            How many jobs were removed.
        """
        validate_name(queue, "queue name")
        return self.broker.admin.clear_queue(queue)

    def queue_jobs(self, queue: str, cursor: str | None = None, limit: int = 50) -> tuple[list[QueuedJob], str | None]:
        """One page of the jobs in ``queue``'s streams (waiting or leased), in the order they are served:
        its front stream (jobs given back), then its own; arguments redacted as in :meth:`job_info`.

        Each page is one ``XRANGE … COUNT`` per stream (never a scan of the queue).

        Args:
            queue: the queue.
            cursor: where the previous page ended (the second value returned), None for the first page.
            limit: jobs per page.

        Returns:
            ``(jobs, cursor of the next page or None when this one is the last)``.

        Raises:
            ConfigError: an invalid queue name or cursor.
        """
        validate_name(queue, "queue name")
        rows = self._stream_rows(queue, _parse_cursor(cursor), limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        details = self.broker.jobs.summaries(
            [(queue, job_id) for _, _, job_id, _ in rows], ("task", "status", "attempt", "envelope")
        )
        jobs = [self._queued_job(queue, row, detail) for row, detail in zip(rows, details, strict=True)]
        last = rows[-1] if more and rows else None
        return jobs, None if last is None else f"{'front' if last[0] else 'queue'}:{last[1]}"

    def _stream_rows(
        self, queue: str, start: tuple[bool, str | None], count: int
    ) -> list[tuple[bool, str, str, bytes | None]]:
        """Up to ``count`` ``(front, entry id, job id, envelope)`` from ``start`` on: the rest of the front
        stream (when ``start`` is in it), then the queue's own stream."""
        front, after = start
        rows: list[tuple[bool, str, str, bytes | None]] = []
        if front:
            found = self.broker.admin.stream_entries(queue, True, after, count)
            rows += [(True, *row) for row in found]
            after = None
        if len(rows) < count:
            found = self.broker.admin.stream_entries(queue, False, after, count - len(rows))
            rows += [(False, *row) for row in found]
        return rows

    def _queued_job(
        self, queue: str, row: tuple[bool, str, str, bytes | None], detail: Sequence[bytes | None]
    ) -> QueuedJob:
        front, entry, job_id, envelope = row
        task, status, attempt, stored = detail
        args, kwargs = self._preview(queue, job_id, text(task or b""), envelope or stored)
        return QueuedJob(
            id=job_id,
            queue=queue,
            entry=entry,
            front=front,
            task=text(task or b"?"),
            status=text(status or b"?"),
            attempts=as_int(attempt),
            args=args,
            kwargs=kwargs,
        )

    def _preview(self, queue: str, job_id: str, task: str, envelope: bytes | None) -> tuple[Any, Any]:
        """A job's arguments as operators see them (redacted, sealed ones as ``<encrypted …>``)."""
        if envelope is None:
            return None, None
        keys = keyring(self.app.settings.encryption_keys)
        info = self._redacted(describe(job_id, queue, {"envelope": envelope, "task": task.encode()}, keys))
        return info.get("args"), info.get("kwargs")

    # -- workers ----------------------------------------------------------------------------------

    def workers(self) -> list[WorkerInfo]:
        """The live workers (heartbeat within three of their intervals), by supervisor then id, each
        with the paused state its supervisor obeys (see :meth:`_last_commands`)."""
        ids = sorted(self.broker.workers.live())
        if not ids:
            return []
        rows = [(worker_id, row) for worker_id, row in zip(ids, self.broker.workers.info(ids), strict=True) if row]
        last = self._last_commands([(worker_id, row.get("supervisor", "")) for worker_id, row in rows])
        found = []
        for worker_id, row in rows:  # rows that expired between the two reads are gone
            started_ms = as_int(row.get("started_ms"))
            command = last.get(row.get("supervisor", "") or worker_id)
            found.append(
                WorkerInfo(
                    id=worker_id,
                    host=row.get("host", ""),
                    pid=as_int(row.get("pid")),
                    supervisor=row.get("supervisor", ""),
                    queues=_split(row.get("queues", "")),
                    started_ms=started_ms,
                    heartbeat_ms=as_int(row.get("heartbeat_ms")),
                    current=_split(row.get("current", "")),
                    paused=command is not None and command[1] == "pause" and command[0] > started_ms,
                )
            )
        return sorted(found, key=lambda w: (w.supervisor, w.id))

    def _last_commands(self, workers: Sequence[tuple[str, str]]) -> dict[str, tuple[int, str]]:
        """The last recorded command each supervisor obeys, ``{supervisor id: (at_ms, cmd)}``.

        A supervisor applies the newest of the commands recorded for ``*``, for itself and for any of
        its children, to all its children (:class:`resq.worker.control.RemoteControl`); a child started
        after that command (a replacement) did not receive it, hence the caller's ``started_ms`` check.
        """
        by_supervisor: dict[str, set[str]] = {}
        for worker_id, supervisor in workers:
            by_supervisor.setdefault(supervisor or worker_id, set()).update({worker_id, supervisor or worker_id})
        targets = sorted({"*"}.union(*by_supervisor.values()))
        recorded = dict(zip(targets, self.broker.workers.command_state(targets), strict=True))
        last: dict[str, tuple[int, str]] = {}
        for supervisor, members in by_supervisor.items():
            commands = [read_command(recorded[t]) for t in ("*", *sorted(members))]
            found = [(at_ms, cmd) for at_ms, cmd, _ in filter(None, commands)]
            if found:
                last[supervisor] = max(found)
        return last

    def paused_count(self, workers: Sequence[WorkerInfo] | None = None) -> int:
        """How many live workers are paused by a remote command."""
        return sum(w.paused for w in (self.workers() if workers is None else workers))

    def control(self, cmd: str, target: str = "*") -> int:
        """Send ``pause``, ``resume`` or ``stop`` to every worker (``*``) or one worker or supervisor.

        The command is published on ``Keys.control`` and recorded in the hash ``Keys.control_state``
        (target -> msgpack ``{"cmd", "at_ms"}``), so a supervisor that was not listening still applies it.

        Returns:
            How many subscribers received the message.

        Raises:
            ConfigError: an unknown command.
        """
        message = control_message(cmd, target)
        state = pack({"cmd": message["cmd"], "at_ms": message["at_ms"]})
        return self.broker.workers.send_command(target, state, pack(message))

    def control_targets(self) -> set[str]:
        """Every id a control command may name: live workers and their supervisors."""
        workers = self.workers()
        return {w.id for w in workers} | {w.supervisor for w in workers if w.supervisor}

    # -- statistics -------------------------------------------------------------------------------

    def stats(self, days: int = 7) -> dict[str, Any]:
        """Counters today and in total, and per day for the last ``days`` days (newest first).

        Returns:
            ``{"today": {name: n}, "total": {name: n}, "days": [{"day": "YYYY-MM-DD", name: n, …}]}``
            with names from :data:`COUNTERS`.
        """
        today = datetime.now(UTC).date()
        span = [today - timedelta(days=i) for i in range(max(days, 1))]
        total, counts = self.broker.stats.counters(span)
        per_day = [{"day": day.isoformat(), **row} for day, row in zip(span, counts, strict=True)]
        return {"today": counts[0], "total": total, "days": per_day[:days]}

    def task_counters(self) -> dict[tuple[str, str, str], int]:
        """Counters by ``(task, queue, counter)`` (``Keys.stat_by_task``)."""
        return self.broker.stats.by_task()

    def durations(self) -> dict[str, dict[str, int]]:
        """The duration histogram by task: ``{task: {bucket bound ms or "+Inf": n, "sum_ms": s, "count": c}}``
        (buckets are not cumulative)."""
        return self.broker.stats.durations()

    def live_worker_count(self) -> int:
        """How many workers have a fresh heartbeat."""
        return self.broker.workers.live_count()

    def other_namespaces(self) -> list[str]:
        """The other namespaces of this Redis database that hold resq keys (a hint for an empty one)."""
        own = self.broker.keys.namespace
        return [name for name in self.broker.admin.namespaces() if name != own]

    # -- tasks ------------------------------------------------------------------------------------

    def tasks(self) -> list[TaskInfo]:
        """The tasks the app registers, by name, with their options and periodic entries."""
        periodic: dict[str, list[str]] = {}
        for name, entry in self.app.periodic_entries.items():
            periodic.setdefault(str(getattr(entry, "task", "")), []).append(name)
        return [
            TaskInfo(
                name=task.name,
                queue=task.queue,
                retries=task.options.retries,
                backoff=describe_backoff(task.options.backoff),
                timeout=task.options.timeout,
                soft_timeout=task.options.soft_timeout,
                result_ttl=task.options.result_ttl,
                periodic=sorted(periodic.get(task.name, [])),
            )
            for task in sorted(self.app.tasks.values(), key=lambda t: t.name)
        ]

    # -- jobs -------------------------------------------------------------------------------------

    def job_info(self, job_id: str) -> dict[str, Any]:
        """Everything recorded about a job, with its history (see :meth:`resq.Job.info`).

        Raises:
            UnknownJob: no such job (or its record expired).
        """
        info = Job(self.app, job_id).info()
        info.update(self.edges(job_id, info["queue"]))
        return self._redacted(info)

    def edges(self, job_id: str, queue: str) -> dict[str, Any]:
        """A job's place in a workflow (``docs/workflows.md``): ``join`` (the id of the chord, batch or
        ``depends_on`` whose callback it is, or None), ``parents`` (the jobs it waits or waited for) and
        ``children`` (the jobs it releases: a chain's next step, a chord's or a batch's callbacks, the jobs
        that depend on it), each ``{"id", "queue", "status", "task", "via"}``; at most ``EDGES_SHOWN`` of each."""
        fields = self.broker.jobs.fields(queue, job_id)
        join = text(fields["join"]) if "join" in fields else None
        return {"join": join, "parents": self._parents(fields, join), "children": self._children(fields)}

    def _parents(self, fields: dict[str, bytes], join: str | None) -> list[dict[str, Any]]:
        if "parents" in fields:
            refs = [(str(job_id), str(queue)) for job_id, queue in unpack(fields["parents"])]
            return [self._edge(job_id, queue, "depends_on") for job_id, queue in refs[:EDGES_SHOWN]]
        record = None if join is None else self.broker.workflows.record(join)
        if record is None:
            return []
        kind = record.fields.get("kind", "join")
        members = sorted(record.members)[:EDGES_SHOWN]  # ids sort in the order they were made
        return [self._edge(m, self.find_queue(m) or "", kind) for m in members]

    def _children(self, fields: dict[str, bytes]) -> list[dict[str, Any]]:
        children: list[dict[str, Any]] = []
        with contextlib.suppress(DecodeError, KeyError, TypeError, ValueError):
            step = decode_envelope(fields.get("envelope", b"")).meta.get(CHAIN_META, [None])[0]
            if step:
                children.append(self._edge(str(step["id"]), str(step["queue"]), "chain"))
        for join_id, _ in unpack(fields["joins"]) if "joins" in fields else []:
            record = self.broker.workflows.record(str(join_id), members=False)
            for role, (child, child_queue) in ({} if record is None else record.callbacks).items():
                kind = record.fields.get("kind", "join") if record is not None else "join"
                children.append(self._edge(child, child_queue, kind if role == "success" else f"{kind} {role}"))
        return children[:EDGES_SHOWN]

    def _edge(self, job_id: str, queue: str, via: str) -> dict[str, Any]:
        status = self.broker.jobs.status(queue, job_id) if queue else None
        task = self.broker.jobs.task_name(queue, job_id) if status is not None else ""
        found = {"status": None if status is None else str(status), "task": task or None}
        return {"id": job_id, "queue": queue or None, **found, "via": via}

    def batch(self, batch_id: str) -> dict[str, Any]:
        """A batch (or a chord, or a job's ``depends_on``: by its callback's id) as ``resq batch ID``
        shows it: its counts, its callbacks with their statuses, and its jobs (at most ``BATCH_JOBS_SHOWN``).

        Raises:
            UnknownJob: no such batch, or its record expired.
        """
        status = batch_status(self.app, batch_id)
        if status is None:
            raise UnknownJob(f"no batch, chord or depends_on with id {batch_id!r} (never made, or its record expired)")
        callbacks = {role: self._edge(job_id, queue, role) for role, (job_id, queue) in status.callbacks.items()}
        jobs = dict(list(status.jobs.items())[:BATCH_JOBS_SHOWN])
        counts = status.as_dict()
        return {
            **counts,
            "kind": status.kind,
            "open": status.open,
            "complete": status.complete,
            "created_at": from_ms(status.created_ms),
            "callbacks": callbacks,
            "fired": list(status.fired),
            "jobs": jobs,
        }

    def _redacted(self, info: dict[str, Any]) -> dict[str, Any]:
        """``info`` with the values of redacted arguments hidden (the task's ``redact`` and the app's;
        for a task this app does not register, the app's list on keyword arguments), and what stayed
        sealed (an encrypted job, a key this process does not hold) shown as ``<encrypted with key …>``."""
        encrypted = info.get("encrypted")
        if encrypted and encrypted.get("unreadable"):
            info = _sealed_shown(info, encrypted)
        args, kwargs = info.get("args"), info.get("kwargs")
        if isinstance(args, str):  # still sealed: nothing to redact
            return info
        if args is None and kwargs is None:
            return info
        task = self.app.tasks.get(info.get("task") or "")
        if task is not None:
            shown_args, shown_kwargs = task.redacted(args or [], kwargs or {})
        else:
            shown_args, shown_kwargs = redact(args or [], kwargs or {}, set(self.app.settings.redact))
        return {**info, "args": shown_args, "kwargs": shown_kwargs}

    def find_queue(self, job_id: str) -> str | None:
        """The queue that holds job ``job_id`` (its record), or None."""
        return self.broker.jobs.find_queue(job_id)

    def delete_job(self, job_id: str) -> str:
        """Delete a job: a dead one with its record (as ``resq dead purge``), a queued, scheduled or
        retrying one by cancelling it (it leaves its queue; its record, marked cancelled, expires after
        ``result_ttl``). A running job is cancelled with :meth:`cancel`; a finished one expires by itself.

        Returns:
            What was done: ``deleted`` or ``cancelled``.

        Raises:
            UnknownJob: no such job.
            ConfigError: the job is running or already finished.
        """
        queue = self.find_queue(job_id)
        status = None if queue is None else self.broker.jobs.status(queue, job_id)
        if queue is None or status is None:
            raise UnknownJob(f"no job with id {job_id!r} (never enqueued, or its record expired)")
        if status == JobStatus.DEAD:
            if not self.broker.jobs.purge_dead(queue, [job_id]):
                raise ConfigError(f"job {job_id} left the dead set meanwhile: nothing deleted")
            return "deleted"
        if status in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.RETRYING, JobStatus.DEFERRED):
            return str(self.cancel(job_id))
        raise ConfigError(
            f"job {job_id} is {status}: only dead, queued or scheduled jobs can be deleted "
            f"({'cancel it first' if status == JobStatus.RUNNING else 'its record expires after result_ttl'})"
        )

    def cancel(self, job_id: str) -> JobStatus:
        """Cancel a job: a queued or scheduled job is removed, a running one is asked to stop.

        Returns:
            The status after the call (see :meth:`resq.Job.cancel`).

        Raises:
            UnknownJob: no such job (or its record expired).
        """
        return Job(self.app, job_id).cancel()

    def enqueue(
        self,
        task: str,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        queue: str | None = None,
        delay: float | None = None,
        at: datetime | None = None,
        job_id: str | None = None,
        registered_only: bool = False,
    ) -> tuple[str, str, str]:
        """Enqueue a job by task name, without importing the task.

        Goes through the one enqueue path (:func:`resq.producer.enqueue`, with the ``before_enqueue`` and
        ``after_enqueue`` hooks); a task this app registers goes to its own queue by default, any other
        name to ``default``, sent as is: the worker decides (an unknown name ends dead). With
        ``registered_only`` (the CLI given an app), a name the app does not register is refused.

        Returns:
            ``(job id, queue, status)``.

        Raises:
            ConfigError: an invalid queue name, both ``delay`` and ``at``, a naive ``at``; with
                ``registered_only``, a task the app does not register (with the closest name).
        """
        known = self.app.tasks.get(task)
        if known is None and registered_only:
            raise ConfigError(_unknown_task(task, sorted(self.app.tasks)))
        target = validate_name(queue or (known.queue if known is not None else "default"), "queue name")
        done = producer.enqueue(
            self.app, task, args, kwargs, queue=target, due_ms=due_time_ms(delay, at), job_id=job_id
        )
        status: str | None = done.status
        if status is None:  # a duplicate whose holder's record is gone (a unique window outlives it)
            status = self.app.job_store.status(done.job.queue, done.job.id) or "deduplicated"
        return done.job.id, done.job.queue, str(status)

    # -- dead jobs --------------------------------------------------------------------------------

    def dead_count(self, queue: str | None = None) -> int:
        """How many dead jobs there are (in one queue, or in all)."""
        return sum(self.broker.admin.dead_counts([queue] if queue else self.queue_names()))

    def dead(self, limit: int = 50, queue: str | None = None) -> list[DeadJob]:
        """The most recent dead jobs (in one queue, or across all), newest first."""
        names = [queue] if queue else self.queue_names()
        rows = [
            (died, name, job_id) for name in names for job_id, died in self.broker.jobs.dead_ids(name, 0, limit - 1)
        ]
        rows = sorted(rows, reverse=True)[:limit]
        details = self.broker.jobs.summaries([(name, job_id) for _, name, job_id in rows], ("task", "error"))
        return [
            DeadJob(job_id, name, text(task or b""), died, _error_text(error))
            for (died, name, job_id), (task, error) in zip(rows, details, strict=True)
        ]

    def dead_jobs(
        self,
        queue: str | None = None,
        *,
        task: str | None = None,
        error: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> list[DeadJob]:
        """One page of dead jobs (of one queue or all; of one task; of one error type), newest first,
        with their attempts.

        Without a filter, a page reads ``offset + limit`` ids per queue (``ZREVRANGE`` with limits); with
        one, the newest :data:`DEAD_FILTER_WINDOW` jobs of each queue are looked at (never more).
        """
        names = [queue] if queue else self.queue_names()
        filtered = task is not None or error is not None
        window = max(offset + limit, DEAD_FILTER_WINDOW) if filtered else offset + limit
        rows = sorted(
            ((died, name, job_id) for name in names for job_id, died in self.broker.jobs.dead_ids(name, 0, window - 1)),
            reverse=True,
        )
        if not filtered:
            rows = rows[offset : offset + limit]
        details = self.broker.jobs.summaries([(name, job_id) for _, name, job_id in rows], ("task", "error", "attempt"))
        found = [
            DeadJob(job_id, name, text(raw_task or b""), died, _error_text(raw_error), as_int(attempt))
            for (died, name, job_id), (raw_task, raw_error, attempt) in zip(rows, details, strict=True)
            if not filtered or _matches((raw_task, raw_error), task, error)
        ]
        return found[offset : offset + limit] if filtered else found

    def dead_queue_of(self, job_id: str) -> str | None:
        """The queue whose dead set holds ``job_id``, or None."""
        return self.broker.jobs.dead_queue_of(self.queue_names(), job_id)

    def retry_dead(self, job_id: str) -> str:
        """Queue one dead job again for a fresh series of attempts.

        Returns:
            The queue it went back to.

        Raises:
            UnknownJob: ``job_id`` is in no dead set (or its record is gone).
        """
        queue = self.dead_queue_of(job_id)
        if queue is None or not producer.revive(self.app, queue, [job_id]):
            raise UnknownJob(f"no dead job with id {job_id!r}")
        return queue

    def retry_all_dead(
        self,
        queue: str | None = None,
        progress: Callable[[int], None] | None = None,
        *,
        task: str | None = None,
        error: str | None = None,
    ) -> int:
        """Queue every dead job (of one queue, or of all; of one task; of one error type) again,
        :data:`BATCH` per round trip.

        Jobs that die while this runs are left alone (only deaths before the call are revived).

        Args:
            queue: only this queue's dead jobs.
            progress: called with the number of dead jobs looked at after each batch.
            task: only the jobs of this task (its registered name).
            error: only the jobs whose last error is of this type: its name (``SMTPError``) or its
                qualified name (``myapp.mail.SMTPError``).

        Returns:
            How many jobs were queued again.
        """

        def revive(name: str, ids: list[str]) -> int:
            return producer.revive(self.app, name, ids)

        if task is None and error is None:
            return self._each_dead_batch(now_ms(), queue, revive, progress)
        return self._each_matching_dead(now_ms(), queue, (task, error), revive, progress)

    def _each_matching_dead(
        self,
        until_ms: int,
        queue: str | None,
        wanted: tuple[str | None, str | None],
        act: Callable[[str, list[str]], int],
        progress: Callable[[int], None] | None,
    ) -> int:
        """Apply ``act(queue, ids)`` to the jobs dead before ``until_ms`` whose task and error type match
        ``wanted``, one page of :data:`BATCH` dead jobs at a time.

        Matching jobs leave the dead set (``act`` takes them out); the others stay, so the next page
        starts after the ones kept so far.
        """
        done = 0
        for name in [queue] if queue else self.queue_names():
            kept = 0
            while ids := self.broker.admin.dead_page(name, until_ms, kept, BATCH):
                details = self.broker.jobs.summaries([(name, job_id) for job_id in ids], ("task", "error"))
                chosen = [job_id for job_id, row in zip(ids, details, strict=True) if _matches(row, *wanted)]
                if chosen:
                    done += act(name, chosen)
                kept += len(ids) - len(chosen)
                if progress is not None:
                    progress(len(ids))
        return done

    def purge_dead(
        self, older_than_s: float | None = None, queue: str | None = None, progress: Callable[[int], None] | None = None
    ) -> int:
        """Delete dead jobs (all, or those dead for more than ``older_than_s`` seconds) and their records.

        Returns:
            How many dead jobs were deleted.
        """
        until = now_ms() - (to_ms(older_than_s) if older_than_s else 0)
        return self._each_dead_batch(until, queue, self.broker.jobs.purge_dead, progress)

    def _each_dead_batch(
        self,
        until_ms: int,
        queue: str | None,
        act: Callable[[str, list[str]], int],
        progress: Callable[[int], None] | None,
    ) -> int:
        """Apply ``act(queue, ids)`` to the jobs dead since before ``until_ms``, :data:`BATCH` at a time.

        ``act`` must take the ids out of the dead set (revive and purge both do), so the loop ends.
        """
        done = 0
        for name in [queue] if queue else self.queue_names():
            while ids := self.broker.jobs.dead_before(name, until_ms, BATCH):
                done += act(name, ids)
                if progress is not None:
                    progress(len(ids))
        return done

    # -- scheduled jobs ---------------------------------------------------------------------------

    def scheduled(self, limit: int = 50, offset: int = 0) -> list[ScheduledInfo]:
        """One page of the delayed jobs and retries over every queue, soonest due first (``ZRANGE`` with
        limits: ``offset + limit`` ids per queue)."""
        rows = self.broker.admin.scheduled(self.queue_names(), offset + limit)[offset:]
        details = self.broker.jobs.summaries(
            [(queue, job_id) for _, job_id, queue in rows], ("task", "status", "attempt", "envelope")
        )
        found = []
        for (due, job_id, queue), (task, status, attempt, envelope) in zip(rows, details, strict=True):
            name = text(task or b"?")
            args, kwargs = self._preview(queue, job_id, name, envelope)
            found.append(ScheduledInfo(job_id, queue, due, name, text(status or b"?"), as_int(attempt), args, kwargs))
        return found

    def run_scheduled_now(self, job_id: str) -> str:
        """Move a scheduled (or retrying) job into its queue now, whatever its due time.

        Returns:
            The queue it went to.

        Raises:
            UnknownJob: no such job.
            ConfigError: the job is not scheduled (with its status).
        """
        queue = self.find_queue(job_id)
        if queue is None:
            raise UnknownJob(f"no job with id {job_id!r} (never enqueued, or its record expired)")
        moved, status = producer.run_now(self.app, queue, job_id)
        if not moved:
            raise ConfigError(f"job {job_id} is {status or 'gone'}, not scheduled: nothing moved")
        return queue

    # -- live events ------------------------------------------------------------------------------

    def events(self, poll_s: float = 1.0) -> Iterator[dict[str, Any] | None]:
        """Follow the lifecycle events every worker publishes, decoded.

        Yields None once subscribed (events from then on are received), then after ``poll_s`` seconds
        without an event, so callers can check for a stop. A lost connection is retried (events
        published meanwhile are missed: pub/sub keeps no backlog).

        Raises:
            BrokerUnavailable: Redis does not answer when subscribing.
        """
        subscription: Subscription = self.broker.admin.events()
        first = self.broker.with_retry(lambda: subscription.message(0))
        yield None
        if first is not None:
            yield decode_event(first)
        while True:
            try:
                message = subscription.message(poll_s)
            except BrokerUnavailable:
                time.sleep(min(poll_s, 0.5))
                yield None
                continue
            yield None if message is None else decode_event(message)


def _parse_cursor(cursor: str | None) -> tuple[bool, str | None]:
    """``(in the front stream, after this entry id)`` of a queue listing's cursor (None: the start).

    Raises:
        ConfigError: a malformed cursor.
    """
    if cursor is None:
        return True, None
    stream, _, entry = cursor.partition(":")
    ms, dash, seq = entry.partition("-")
    if stream not in _CURSOR_STREAMS or not (ms.isdigit() and dash and seq.isdigit()):
        raise ConfigError(f"invalid cursor {cursor!r}: expected front:<ms>-<seq> or queue:<ms>-<seq>")
    return _CURSOR_STREAMS[stream], entry


def _sealed_shown(info: dict[str, Any], encrypted: dict[str, Any]) -> dict[str, Any]:
    """``info`` with each part that stayed sealed (``encrypted["unreadable"]``) shown as
    ``<encrypted with key ID>``."""
    shown = dict(info)
    for part in encrypted["unreadable"]:
        marker = f"<encrypted with key {encrypted.get(part) or '?'}>"
        shown.update({"args": marker, "kwargs": marker} if part == "args" else {part: marker})
    return shown


def _unknown_task(task: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(task, known, n=1)
    if close:
        hint = f" — did you mean {close[0]!r}?"
    else:
        hint = f" (it registers: {', '.join(known[:10])}{', …' if len(known) > 10 else ''})" if known else ""
    return f"unknown task {task!r}: the app does not register it{hint} (see `resq tasks`)"


def _matches(row: Sequence[bytes | None], task: str | None, error: str | None) -> bool:
    """Whether a dead job's ``(task, error)`` fields match the wanted task and error type."""
    raw_task, raw_error = row
    if task is not None and text(raw_task or b"") != task:
        return False
    if error is None:
        return True
    try:
        value = unpack(raw_error) if raw_error else {}
    except DecodeError:
        return False
    found = str(value.get("type", "")) if isinstance(value, dict) else ""
    return error in (found, found.rsplit(".", 1)[-1])


def _error_text(raw: bytes | None) -> str:
    if not raw:
        return ""
    try:
        value = unpack(raw)
    except DecodeError:
        return "(undecodable error record)"
    if isinstance(value, dict):
        return f"{shown(value.get('type', '?'))}: {shown(value.get('message', ''))}"
    return shown(value)


def _split(value: str) -> list[str]:
    return [part for part in value.split(",") if part]
