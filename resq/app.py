"""``Resq``: an app's settings, its lazy Redis connection, its tasks and its hooks."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from typing import Any, ParamSpec, TypeVar, overload

from resq.broker import Broker
from resq.canvas import Batch, BatchStatus, Signature, batch_status
from resq.errors import ConfigError
from resq.flow import parse_rate, validate_group
from resq.hooks import Hooks
from resq.job import Job, JobStore
from resq.producer import Call, InlineRunner, enqueue_many
from resq.resque import Resque, ResqueOutcomes
from resq.sealing import require_crypto
from resq.settings import Settings, validate_name
from resq.shards import expand
from resq.task import Task, build_options

__all__ = ["PERIODIC_GROUP", "Resq", "default_app"]

#: The entry-point group naming the package behind ``app.periodic`` and ``app.add_periodic``.
PERIODIC_GROUP = "resq.periodic"
#: The module whose ``EagerRunner`` performs jobs of an ``eager=True`` app (it sits above the app: it uses
#: the worker's executor, so the app names it instead of importing it).
EAGER_MODULE = "resq.testing"

P = ParamSpec("P")
R = TypeVar("R")


class Resq:
    """A resq app: where tasks are registered and jobs are sent.

    No connection is opened until the first job is sent or a worker starts; with ``eager=True`` (for
    tests), none at all: ``.delay()`` runs the job in the caller (see ``resq.testing.eager``).

    Args:
        url: the Redis url; defaults to ``RESQ_REDIS_URL``, then ``redis://127.0.0.1:6379/0``.
        namespace: the prefix of every Redis key; defaults to ``RESQ_NAMESPACE``, then ``"resq"``.
        **settings: any field of :class:`resq.settings.Settings` (``result_ttl``,
            ``max_payload_bytes``, ``heartbeat_interval``, …).

    Raises:
        ConfigError: an unknown setting or an invalid value (``encrypt=True`` without the ``crypto``
            extra, a malformed encryption key).

    Example::

        app = Resq("redis://localhost:6379/0")

        @app.task(retries=3, queue="mail")
        def send_mail(to: str, subject: str) -> None: ...
    """

    def __init__(self, url: str | None = None, *, namespace: str | None = None, **settings: Any) -> None:
        self.settings = _checked(Settings.build(url, namespace, **settings))
        self.tasks: dict[str, Task[Any, Any]] = {}
        self.hooks = Hooks()
        self._broker: Broker | None = None
        self._inline: InlineRunner | None = None
        self._resque: Resque | None = None
        #: Resque-family class name -> the name of the task that runs its jobs (``@app.task(resque_class=)``
        #: fills it; entries may be added by hand), for ``resq worker --resque-queues``
        self.resque_classes: dict[str, str] = {}
        self._resque_outcomes = False
        #: periodic entries declared in code (filled by ``resq_scheduler``), by name
        self.periodic_entries: dict[str, Any] = {}
        #: ``fn -> None`` running ``fn`` after the current transaction commits, for ``delay_on_commit``
        #: (None: the one an integration installed with ``resq.task.use_on_commit``)
        self.on_commit: Callable[[Callable[[], None]], None] | None = None

    def __repr__(self) -> str:
        return f"<Resq namespace={self.settings.namespace!r} tasks={len(self.tasks)}>"

    def reconfigure(self, **settings: Any) -> None:
        """Change settings (e.g. ``heartbeat_interval`` from the command line); reconnects on next use.

        Raises:
            ConfigError: an unknown setting or an invalid value.
        """
        merged = {f: getattr(self.settings, f) for f in self.settings.__dataclass_fields__}
        merged.update(settings)
        url, namespace = merged.pop("url"), merged.pop("namespace")
        eager = self.settings.eager
        self.settings = _checked(Settings.build(url, namespace, **merged))
        if self.settings.eager != eager:
            self._inline = None
        if self._broker is not None:
            self._broker.close()
        self._broker = None

    @property
    def broker(self) -> Broker:
        """The queue operations on this app's Redis (created on first use)."""
        if self._broker is None:
            self._broker = Broker(self.settings)
        return self._broker

    @property
    def inline(self) -> InlineRunner | None:
        """The runner that performs jobs in the caller (eager mode), or None: jobs go to Redis.

        Set by ``resq.testing.eager(app)`` for a block, or created on first use for ``eager=True``.
        """
        if self._inline is None and self.settings.eager:
            self._inline = importlib.import_module(EAGER_MODULE).EagerRunner(self)
        return self._inline

    def use_inline(self, runner: InlineRunner | None) -> InlineRunner | None:
        """Install the runner of eager mode (None: back to Redis, unless ``eager=True``); returns the
        previous one. ``resq.testing.eager(app)`` is the usual way in."""
        previous, self._inline = self._inline, runner
        return previous

    @property
    def job_store(self) -> JobStore:
        """Where job handles read their records: the eager runner's, else Redis (``broker.jobs``)."""
        inline = self.inline
        return self.broker.jobs if inline is None else inline.jobs

    @overload
    def task(self, fn: Callable[P, R], /) -> Task[P, R]: ...

    @overload
    def task(self, fn: None = None, /, **options: Any) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    def task(
        self, fn: Callable[P, R] | None = None, /, **options: Any
    ) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
        """Register a function as a task, bare (``@app.task``) or with options (``@app.task(retries=3)``).

        Args:
            fn: the function (when used bare).
            **options: ``name`` (default ``module.qualname``), ``queue`` (``"default"``), ``retries``
                (0), ``backoff`` (seconds, ``"fixed"``, ``"linear"``, ``"exponential"`` or a callable
                ``attempt -> seconds``), ``retry_on`` (exception types, default ``Exception``),
                ``timeout`` and ``soft_timeout`` (seconds), ``result_ttl`` (seconds), ``redact``,
                ``encrypt`` (seal arguments and result; default: the app's ``encrypt``), and per-task
                hooks (``on_failure=fn``, …).

        Raises:
            ConfigError: an unknown option or an invalid value, at decoration time.
        """

        def decorate(func: Callable[P, R]) -> Task[P, R]:
            if isinstance(func, Task):
                raise ConfigError(f"{func!r} is already a task")
            task = Task(self, func, build_options(func, options))
            self.register(task)
            return task

        if fn is not None:
            return decorate(fn)
        build_options(None, options)  # fail at the decorator's call, before any function is given
        return decorate

    def register(self, task: Task[Any, Any]) -> None:
        """Add a task to the registry.

        Raises:
            ConfigError: another function is registered under the same name.
        """
        existing = self.tasks.get(task.name)
        if existing is not None and existing.fn is not task.fn:
            raise ConfigError(f"two tasks are named {task.name!r}: give one of them name=...")
        o = task.options
        other = next((t for t in self.tasks.values() if t.options.queue == o.queue and t.name != task.name), None)
        if other is not None and other.options.shards != o.shards:
            raise ConfigError(
                f"queue {o.queue!r} has {other.options.shards} shard(s) for {other.name} but {o.shards} for "
                f"{task.name}: the tasks of one queue give it the same shards=..."
            )
        claimed = self.resque_classes.get(o.resque_class or "")
        if o.resque_class and claimed not in (None, task.name):
            raise ConfigError(f"two tasks run the Resque class {o.resque_class!r}: {claimed} and {task.name}")
        self.tasks[task.name] = task
        if o.resque_class:
            self.resque_classes[o.resque_class] = task.name
            self.count_resque_jobs()

    def count_resque_jobs(self) -> None:
        """Keep the Resque family's counters and failure records of the jobs taken from their queues
        (``resq.resque.ResqueOutcomes``; registered once, when a task names a ``resque_class`` or a worker
        serves Resque queues)."""
        if not self._resque_outcomes:
            self._resque_outcomes = True
            self.add_plugin(ResqueOutcomes(self))

    @property
    def resque(self) -> Resque:
        """Jobs for the Resque family's workers (Ruby, PHP, CakeResque, node-resque) on this app's Redis,
        namespace ``resque``: ``app.resque.enqueue("SendMail", ["a@b.c"], queue="mail")`` (``docs/resque.md``;
        another namespace: ``resq.resque.Resque(app, "resque:App")``)."""
        if self._resque is None:
            self._resque = Resque(self)
        return self._resque

    def shards(self, queue: str) -> int:
        """How many shards ``queue`` is spread over (1: it is not sharded), as its tasks say
        (``@app.task(queue=..., shards=N)``, ``docs/scaling.md#a-queue-bigger-than-one-node``)."""
        return next((t.options.shards for t in self.tasks.values() if t.options.queue == queue), 1)

    def served(self, queues: Iterable[str]) -> list[str]:
        """``queues`` as a worker reads them: each sharded queue replaced by its shards, in order."""
        return expand(queues, self.shards)

    def enqueue_many(self, calls: Iterable[tuple[Any, ...]], *, queue: str | None = None) -> list[Job[Any]]:
        """Enqueue many jobs of any tasks, in chunks of ``resq.producer.CHUNK`` per round trip.

        Each call is ``(task, args)`` or ``(task, args, kwargs)``, where ``task`` is a :class:`Task` or a
        task name (a name this app does not register is sent as is, to ``queue`` or ``default``)::

            app.enqueue_many([(send_mail, ("a@b.c", "hi")), (refresh, (), {"user_id": 42})])

        Args:
            calls: the jobs.
            queue: the queue of every job (default: each task's own).

        Returns:
            A handle on each job, in order.

        Raises:
            ConfigError: a call is not ``(task, args[, kwargs])``, or an invalid queue name.
            ArgumentsError: a call's arguments do not fit its task (the chunks before it are enqueued).
            EncodeError, PayloadTooLarge, BrokerUnavailable: as for ``Task.apply_async``.
        """
        target = None if queue is None else validate_name(queue, "queue name")
        return enqueue_many(self, (self._call(item, target) for item in calls))

    def _call(self, item: tuple[Any, ...], queue: str | None) -> Call:
        if not isinstance(item, tuple) or not 2 <= len(item) <= 3:
            raise ConfigError(f"enqueue_many takes (task, args) or (task, args, kwargs) tuples, got {item!r}")
        task, args, kwargs = item[0], item[1], (item[2] if len(item) == 3 else None)
        known = task if isinstance(task, Task) else self.tasks.get(task) if isinstance(task, str) else None
        if known is None and not isinstance(task, str):
            raise ConfigError(f"enqueue_many: {task!r} is neither a task nor a task name")
        if known is not None:
            known.check_arguments(args, kwargs, " (nothing was enqueued for it)")
        name = known.name if known is not None else str(task)
        return Call(name, tuple(args), dict(kwargs or {}), queue or (known.queue if known else "default"))

    def job(self, job_id: str) -> Job[Any]:
        """A handle on the job with this id (its queue is looked up when needed)."""
        return Job(self, job_id)

    def batch(
        self, on_success: Signature | None = None, on_complete: Signature | None = None, *, description: str = ""
    ) -> Batch:
        """Jobs enqueued together, with callbacks once they are all done (Sidekiq Pro's batches)::

            with app.batch(on_success=notify.s(user_id), on_complete=report.s()) as batch:
                for friend in friends:
                    notify_friend.delay(friend)
            batch.status()          # or app.batch_status(batch.id), `resq batch ID`

        Every job enqueued inside the block joins the batch, and so does every job those jobs enqueue
        while they run. ``on_success`` runs once every job succeeded, ``on_complete`` once every job
        ended (succeeded, dead, cancelled or expired); each receives the batch's counts as its first
        argument. See ``docs/workflows.md#batches``.

        Raises:
            ConfigError: a callback that is not a signature (``task.s(...)``).
        """
        return Batch(self, on_success, on_complete, description=description)

    def batch_status(self, batch_id: str) -> BatchStatus | None:
        """The counts, jobs and callbacks of a batch (or of a chord, or a job's ``depends_on``: their ids
        are their callback's); None when unknown or its record expired."""
        return batch_status(self, batch_id)

    def group_weight(self, group: str, weight: float, *, queue: str | None = None) -> None:
        """Serve ``group`` ``weight`` times as often as a group of weight 1 (the default), in ``queue`` or
        in every queue of the namespace (``apply_async(group=...)``; see ``docs/flow-control.md``). Jobs
        of the group enqueued from now on are scored by it.

        Raises:
            ConfigError: a weight that is not a positive number, or a bad group or queue name.
        """
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 < weight <= 1000:
            raise ConfigError(f"a group's weight must be a number above 0 and at most 1000, got {weight!r}")
        for name in self._group_queues(group, queue):
            self.broker.queues.group_weight(name, group, float(weight))

    def group_limits(
        self,
        group: str,
        *,
        concurrency: int | None = None,
        rate_limit: str | None = None,
        queue: str | None = None,
    ) -> None:
        """Give ``group`` limits of its own, in ``queue`` or in every queue: at most ``concurrency`` of its
        jobs running at once, at most ``rate_limit`` starts (``"10/s"``), across every worker; both None
        removes them. They apply to the group's jobs handed out from now on, in place of their task's
        own concurrency and rate limits.

        Raises:
            ConfigError: a concurrency that is not a positive integer, a rate limit that does not parse.
        """
        bad = not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1
        if concurrency is not None and bad:
            raise ConfigError(f"concurrency must be a positive integer (jobs running at once), got {concurrency!r}")
        rate = None if rate_limit is None else parse_rate(rate_limit)
        for name in self._group_queues(group, queue):
            self.broker.queues.group_limits(name, group, concurrency, rate)

    def pause_group(self, group: str, *, queue: str | None = None) -> None:
        """Stop starting the jobs of ``group`` (in ``queue``, or in every queue) until :meth:`resume_group`;
        they keep their place, and the other groups go on."""
        for name in self._group_queues(group, queue):
            self.broker.queues.pause_group(name, group)

    def resume_group(self, group: str, *, queue: str | None = None) -> int:
        """Start the jobs of a paused ``group`` again; returns how many went back in line."""
        return sum(self.broker.queues.resume_group(name, group) for name in self._group_queues(group, queue))

    def _group_queues(self, group: str, queue: str | None) -> list[str]:
        validate_group(group)
        return [validate_name(queue, "queue name")] if queue is not None else self.broker.queues.known()

    def on(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register a hook for a lifecycle point (see ``resq.hooks.HOOK_NAMES``).

        Example::

            @app.on("after_perform")
            def record(job, result): ...
        """

        def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.hooks.add(name, fn)
            return fn

        return decorate

    @overload
    def periodic(self, fn: Callable[P, R], /, **options: Any) -> Task[P, R]: ...

    @overload
    def periodic(self, fn: None = None, /, **options: Any) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    def periodic(
        self, fn: Callable[P, R] | None = None, /, **options: Any
    ) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
        """Register a function as a task and a periodic entry (see ``docs/scheduling.md``).

        Example::

            @app.periodic(cron="*/5 * * * *", tz="Europe/Paris")
            def refresh() -> None: ...

            @app.periodic(every=30)
            def ping() -> None: ...

        Returns:
            The :class:`~resq.Task` (typed like ``@app.task``: ``Task[P, R]`` for a function ``P -> R``),
            or a decorator returning it.
        """
        registered: Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]
        registered = _periodic_extension().periodic(self, fn, **options)
        return registered

    def add_periodic(self, task: Task[Any, Any] | str, **options: Any) -> Any:
        """Add a periodic entry for an existing task; entries added at run time persist in Redis."""
        return _periodic_extension().add_periodic(self, task, **options)

    def add_plugin(self, plugin: object) -> None:
        """Register every hook method of a plugin object (see :class:`resq.Plugin`)."""
        self.hooks.add_plugin(plugin)


def _checked(settings: Settings) -> Settings:
    """``settings``, once what they need is installed (``encrypt=True``: the ``crypto`` extra)."""
    if settings.encrypt:
        require_crypto()
    return settings


def _periodic_extension() -> Any:
    """The package that validates and runs periodic entries, found through the ``resq.periodic`` entry
    point (``resq_scheduler``): resq declares the extension point and never imports the scheduler."""
    found = entry_points(group=PERIODIC_GROUP)
    for ep in found:
        return ep.load()
    raise ConfigError("periodic jobs need the scheduler package (resq_scheduler), which is not installed")


_default: Resq | None = None


def default_app() -> Resq:
    """The app behind the module-level ``@resq.task``, configured from ``RESQ_REDIS_URL`` and
    ``RESQ_NAMESPACE`` like ``Resq()`` (created on first use, without connecting)."""
    global _default
    if _default is None:
        _default = Resq()
    return _default
