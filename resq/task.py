"""Tasks: a function registered with an app, and the ways to enqueue it."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from resq.canvas import Signature, enqueue_dependent
from resq.clock import due_time_ms, now_ms
from resq.errors import ArgumentsError, ConfigError, did_you_mean
from resq.flow import parse_rate, validate_group, validate_priority
from resq.job import Job, new_job_id
from resq.producer import Call, aenqueue, enqueue, enqueue_many
from resq.retry import BackoffPolicy, make_backoff, to_seconds
from resq.sealing import require_crypto
from resq.settings import redact_names, validate_name

if TYPE_CHECKING:
    from resq.app import Resq

__all__ = ["TASK_OPTIONS", "Task", "TaskOptions", "use_on_commit"]

P = ParamSpec("P")
R = TypeVar("R")

#: Per-task hooks accepted as task options (see ``docs/hooks.md``).
TASK_HOOKS = ("before_perform", "after_perform", "on_success", "on_failure", "on_retry", "on_dead")
#: Flow-control options of ``@app.task`` (see ``docs/flow-control.md``).
FLOW_OPTIONS = (
    "priority",
    "concurrency",
    "concurrency_key",
    "rate_limit",
    "rate_limit_key",
    "expires_in",
    "unique",
    "unique_key",
    "unique_for",
    "unique_until",
    "debounce",
    "debounce_max",
    "shards",
    "shard_key",
)
#: The most shards one logical queue is spread over (``@app.task(shards=N)``).
MAX_SHARDS = 1024
#: The ways a unique task's lock is held: until its job starts, until it finishes, or for ``unique_for``.
UNIQUE_UNTIL = ("started", "finished", "window")
#: Every option ``@app.task`` accepts.
TASK_OPTIONS = (
    "name",
    "queue",
    "retries",
    "backoff",
    "retry_on",
    "timeout",
    "soft_timeout",
    "result_ttl",
    "redact",
    "encrypt",
    "resque_class",
    *FLOW_OPTIONS,
    *TASK_HOOKS,
)
#: What a redacted argument's value is shown as.
REDACTED = "***"

#: ``fn -> None``: call ``fn`` once the current transaction commits (never if it rolls back).
OnCommit = Callable[[Callable[[], None]], None]
#: The on-commit function of apps whose ``on_commit`` is None (set by an integration: ``resq.contrib.django``).
_default_on_commit: OnCommit | None = None


def use_on_commit(fn: OnCommit | None) -> OnCommit | None:
    """Make ``fn`` the on-commit function of every app that sets none (``app.on_commit``), for
    ``Task.delay_on_commit``; returns the previous one. ``resq.contrib.django`` installs Django's
    ``transaction.on_commit`` when it starts."""
    global _default_on_commit
    previous, _default_on_commit = _default_on_commit, fn
    return previous


def redact(
    args: Sequence[Any], kwargs: Mapping[str, Any], names: set[str], positional: Sequence[str] = ()
) -> tuple[list[Any], dict[str, Any]]:
    """``args`` and ``kwargs`` with the values of the arguments in ``names`` replaced by ``REDACTED``;
    ``positional`` names the positional arguments, in order (unnamed ones are shown)."""
    shown = [REDACTED if i < len(positional) and positional[i] in names else a for i, a in enumerate(args)]
    return shown, {k: REDACTED if k in names else v for k, v in kwargs.items()}


@dataclass(frozen=True)
class TaskOptions:
    """A task's validated options."""

    name: str
    queue: str = "default"
    retries: int = 0
    backoff: BackoffPolicy = field(default_factory=lambda: make_backoff("exponential"))
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    #: hard limit of one attempt, in seconds (None: no limit)
    timeout: float | None = None
    #: seconds after which ``SoftTimeout`` is raised inside the task (None: never)
    soft_timeout: float | None = None
    #: seconds the result is kept (None: the app's ``result_ttl``)
    result_ttl: float | None = None
    #: names of the arguments whose values are hidden wherever resq shows arguments (``redacted``)
    redact: tuple[str, ...] = ()
    #: seal the arguments and the result (``resq.sealing``); None: the app's ``encrypt`` setting
    encrypt: bool | None = None
    #: 0 to 9: higher runs first within the queue
    priority: int = 0
    #: how many of its jobs (per ``concurrency_key``) may run at once, across all workers (None: no limit)
    concurrency: int | None = None
    concurrency_key: Callable[..., Any] | None = None
    #: ``(starts, window ms)`` allowed across all workers, per ``rate_limit_key`` (None: no limit)
    rate_limit: tuple[int, int] | None = None
    rate_limit_key: Callable[..., Any] | None = None
    #: seconds after its enqueue when a job not started by then expires (None: never)
    expires_in: float | None = None
    #: at most one live job per ``unique_key`` (default: the task and its arguments), held ``unique_until``
    unique: bool = False
    unique_key: Callable[..., Any] | None = None
    #: the most seconds a unique lock is held (None: as long as ``unique_until`` says)
    unique_for: float | None = None
    unique_until: str = "finished"
    #: seconds a debounced call waits for a newer one, and the most it waits after the first call
    debounce: float | None = None
    debounce_max: float | None = None
    #: the number of shards its queue is spread over (``queue#0`` ... ``queue#N-1``; 1: not sharded), and
    #: the function of its arguments whose value picks a job's shard (None: round-robin)
    shards: int = 1
    shard_key: Callable[..., Any] | None = None
    #: the Resque family's class name whose jobs this task runs (``resq worker --resque-queues``)
    resque_class: str | None = None
    hooks: dict[str, Callable[..., Any]] = field(default_factory=dict)


def build_options(fn: Callable[..., Any] | None, options: dict[str, Any]) -> TaskOptions:
    """Validate ``@task`` options at decoration time (``fn`` None: before the function is known, for
    ``@app.task(...)`` to fail at its own call).

    Raises:
        ConfigError: an unknown option (with a hint) or an invalid value.
    """
    for key in options:
        if key not in TASK_OPTIONS:
            hint = did_you_mean(key, TASK_OPTIONS)
            more = f"; did you mean {hint!r}?" if hint else f"; options are: {', '.join(TASK_OPTIONS)}"
            where = "" if fn is None else f" for {_qualname(fn)}"
            raise ConfigError(f"unknown task option {key!r} in @app.task(...){where}{more}")
    retries = options.get("retries", 0)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ConfigError(f"retries must be a non-negative integer, got {retries!r}")
    retry_on = options.get("retry_on", (Exception,))
    retry_on = retry_on if isinstance(retry_on, tuple) else (retry_on,)
    if not all(isinstance(t, type) and issubclass(t, BaseException) for t in retry_on):
        raise ConfigError(f"retry_on must be exception types, got {options['retry_on']!r}")
    hooks = {name: options[name] for name in TASK_HOOKS if options.get(name) is not None}
    for name, hook in hooks.items():
        if not callable(hook):
            raise ConfigError(f"task hook {name} must be callable, got {hook!r}")
    return TaskOptions(
        name=_name(_default_name(fn) if options.get("name") is None else options["name"]),
        queue=validate_name("default" if options.get("queue") is None else options["queue"], "queue name"),
        retries=retries,
        backoff=make_backoff(options.get("backoff", "exponential")),
        retry_on=retry_on,
        timeout=_positive(options.get("timeout"), "timeout"),
        soft_timeout=_positive(options.get("soft_timeout"), "soft_timeout"),
        result_ttl=_positive(options.get("result_ttl"), "result_ttl"),
        redact=redact_names(options.get("redact", ()), "task option redact"),
        encrypt=_encrypt(options.get("encrypt")),
        resque_class=_resque_class(options.get("resque_class")),
        hooks=hooks,
        **_flow_options(options),
    )


def _resque_class(value: Any) -> str | None:
    """The ``resque_class`` option, checked: a class name as Resque-family producers write it."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise ConfigError(
            f"resque_class is a Resque job class name, e.g. 'SendMail' or 'Job\\Work\\TestJob', got {value!r}"
        )
    return value


def _flow_options(options: dict[str, Any]) -> dict[str, Any]:
    """The flow-control options of ``@app.task``, checked (``docs/flow-control.md``)."""
    found: dict[str, Any] = {"priority": validate_priority(options.get("priority", 0), "task option priority")}
    concurrency = options.get("concurrency")
    if concurrency is not None and (
        isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1
    ):
        raise ConfigError(f"concurrency must be a positive integer (jobs running at once), got {concurrency!r}")
    found["concurrency"] = concurrency
    rate = options.get("rate_limit")
    found["rate_limit"] = None if rate is None else parse_rate(rate)
    for name, needs in (("concurrency_key", "concurrency"), ("rate_limit_key", "rate_limit"), ("unique_key", "unique")):
        fn = options.get(name)
        if fn is not None and not callable(fn):
            raise ConfigError(f"{name} must be a function of the task's arguments, got {fn!r}")
        if fn is not None and not options.get(needs) and not (name == "unique_key" and options.get("debounce")):
            raise ConfigError(f"{name} needs {needs}=...: the key says what the limit counts")
        found[name] = fn
    found["expires_in"] = _positive(options.get("expires_in"), "expires_in")
    found["unique"] = bool(options.get("unique", False))
    found["unique_for"] = _positive(options.get("unique_for"), "unique_for")
    until = options.get("unique_until", "finished")
    if until not in UNIQUE_UNTIL:
        raise ConfigError(f"unique_until must be one of {', '.join(UNIQUE_UNTIL)}, got {until!r}")
    if until == "window" and found["unique_for"] is None:
        raise ConfigError("unique_until='window' needs unique_for=... (how long the window lasts)")
    found["unique_until"] = until
    found["debounce"] = _positive(options.get("debounce"), "debounce")
    found["debounce_max"] = _positive(options.get("debounce_max"), "debounce_max")
    if found["debounce_max"] is not None and found["debounce"] is None:
        raise ConfigError("debounce_max needs debounce=... (the wait it caps)")
    if (
        found["debounce"] is not None
        and found["debounce_max"] is not None
        and found["debounce_max"] < found["debounce"]
    ):
        raise ConfigError(f"debounce_max ({found['debounce_max']} s) must be at least debounce ({found['debounce']} s)")
    if found["debounce"] is not None and found["unique"]:
        raise ConfigError("a task is either unique or debounced, not both (debounce keeps one pending job per key)")
    found.update(_shard_options(options, found))
    return found


def _shard_options(options: dict[str, Any], flow: dict[str, Any]) -> dict[str, Any]:
    """The ``shards`` and ``shard_key`` options, checked (``docs/scaling.md#a-queue-bigger-than-one-node``).
    A sharded task takes no limit, unique lock or debounce: each is kept in its queue's slot, and a shard
    is a slot of its own (the limit would hold per shard, not per queue)."""
    shards, key = options.get("shards", 1), options.get("shard_key")
    if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= MAX_SHARDS:
        raise ConfigError(f"shards must be an integer from 1 to {MAX_SHARDS} (the queue's shards), got {shards!r}")
    if key is not None and not callable(key):
        raise ConfigError(f"shard_key must be a function of the task's arguments, got {key!r}")
    if key is not None and shards == 1:
        raise ConfigError("shard_key needs shards=N: the key picks one of the queue's N shards")
    held = [name for name in ("concurrency", "rate_limit", "debounce") if flow[name] is not None]
    held += ["unique"] if flow["unique"] else []
    if shards > 1 and held:
        raise ConfigError(
            f"a sharded task (shards={shards}) takes no {' or '.join(held)}: each shard is a slot of its own, so "
            "the limit would hold per shard, not per queue (see docs/scaling.md#a-queue-bigger-than-one-node)"
        )
    return {"shards": shards, "shard_key": key}


def _encrypt(value: Any) -> bool | None:
    """The ``encrypt`` option, checked: a bool or None; True needs the ``crypto`` extra installed."""
    if value is not None and not isinstance(value, bool):
        raise ConfigError(f"encrypt must be True, False or None (the app's setting), got {value!r}")
    if value:
        require_crypto()
    return value


def _qualname(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def _default_name(fn: Callable[..., Any] | None) -> str:
    return "task" if fn is None else _qualname(fn)


def _name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"task name must be a non-empty string, got {name!r}")
    return name


def _plain(signature: inspect.Signature) -> str:
    """A signature without annotations, for messages: ``(to, subject, *, cc=None)``."""
    params = [p.replace(annotation=inspect.Parameter.empty) for p in signature.parameters.values()]
    return str(signature.replace(parameters=params, return_annotation=inspect.Signature.empty))


def _positive(value: Any, what: str) -> float | None:
    if value is None:
        return None
    seconds = to_seconds(value)
    if seconds <= 0:
        raise ConfigError(f"{what} must be a positive number of seconds, got {value!r}")
    return seconds


class Task(Generic[P, R]):
    """A function registered with an app; call it to run it here, ``.delay()`` it to run it in a worker.

    Example::

        @app.task(retries=3, queue="mail")
        def send_mail(to: str, subject: str) -> str: ...

        send_mail("a@b.c", "hi")                  # runs now, in this process
        job = send_mail.delay("a@b.c", "hi")      # runs in a worker; job.result(timeout=10)
    """

    def __init__(self, app: Resq, fn: Callable[P, R], options: TaskOptions) -> None:
        self.app = app
        self.fn = fn
        self.options = options
        self.name = options.name
        self.queue = options.queue
        self.is_async = inspect.iscoroutinefunction(fn)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __repr__(self) -> str:
        return f"<Task {self.name} queue={self.queue}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the task synchronously, in this process (no Redis involved)."""
        return self.fn(*args, **kwargs)

    @property
    def encrypts(self) -> bool:
        """Whether this task's arguments and results are sealed: its ``encrypt`` option, else the app's."""
        own = self.options.encrypt
        return self.app.settings.encrypt if own is None else own

    @functools.cached_property
    def signature(self) -> inspect.Signature | None:
        """The function's signature (computed once; None for a callable Python cannot introspect)."""
        try:
            return inspect.signature(self.fn)
        except (TypeError, ValueError):
            return None

    def redacted(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """``args`` and ``kwargs`` with the values of the arguments named in this task's ``redact`` (and
        the app's) replaced by ``REDACTED``: what the CLI and the inspector show. Positional arguments
        are named by the function's signature."""
        names = set(self.options.redact) | set(self.app.settings.redact)
        params = [] if self.signature is None else list(self.signature.parameters.values())
        positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        return redact(args, kwargs, names, positional)

    @functools.cached_property
    def _plain_arity(self) -> int:
        """The number of parameters when every one is positional-or-keyword without a default (so that
        exactly that many positional arguments bind, and nothing else needs checking); else -1."""
        signature = self.signature
        if signature is None:
            return -1
        params = list(signature.parameters.values())
        plain = all(p.kind is p.POSITIONAL_OR_KEYWORD and p.default is p.empty for p in params)
        return len(params) if plain else -1

    def check_arguments(self, args: Sequence[Any], kwargs: Mapping[str, Any] | None, suffix: str = "") -> None:
        """Raise :class:`~resq.errors.ArgumentsError` unless the function accepts these arguments.

        Binds them to the signature as a call would (``inspect.Signature.bind``), without calling.

        Args:
            args: the task's positional arguments.
            kwargs: the task's keyword arguments.
            suffix: added to the message (``" (nothing was enqueued)"`` at enqueue).

        Raises:
            ArgumentsError: e.g. "arguments do not match the signature of mail.send(to, subject): missing a
                required argument: 'subject'".
        """
        if not kwargs and len(args) == self._plain_arity:
            return  # all positional, as many as the function's plain parameters: binds (the common call)
        signature = self.signature
        if signature is None:
            return
        try:
            signature.bind(*args, **(kwargs or {}))
        except TypeError as exc:
            raise ArgumentsError(
                f"arguments do not match the signature of {self.name}{_plain(signature)}: {exc}{suffix}"
            ) from None

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        """A signature of this task with these arguments: a step of a workflow (``resq.chain``). In a chain
        it receives the previous step's result as its first argument, before these."""
        return Signature(self.app, self.name, tuple(args), dict(kwargs), self.queue)

    def si(self, *args: Any, **kwargs: Any) -> Signature:
        """An immutable signature: in a chain, it ignores the previous step's result."""
        return Signature(self.app, self.name, tuple(args), dict(kwargs), self.queue, immutable=True)

    def arguments_by_name(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The arguments of a call by parameter name, defaults included (what key functions receive:
        ``concurrency_key``, ``rate_limit_key``, ``unique_key``); ``kwargs`` alone for a function Python
        cannot introspect."""
        signature = self.signature
        if signature is None:
            return dict(kwargs)
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> Job[R]:
        """Enqueue the task with these arguments, to run as soon as a worker is free.

        Raises:
            ArgumentsError: the arguments do not match the function's signature (nothing is enqueued).
            EncodeError: an argument cannot be carried by msgpack (nothing is enqueued).
            PayloadTooLarge: the encoded job is over ``max_payload_bytes`` (nothing is enqueued).
            BrokerUnavailable: Redis could not be reached after a bounded retry.
        """
        return self.apply_async(args, kwargs)

    def enqueue_in(self, delay: float | timedelta, *args: P.args, **kwargs: P.kwargs) -> Job[R]:
        """Enqueue the task to run after ``delay`` (seconds or a ``timedelta``)."""
        return self.apply_async(args, kwargs, delay=delay)

    def enqueue_at(self, when: datetime, *args: P.args, **kwargs: P.kwargs) -> Job[R]:
        """Enqueue the task to run at ``when``, a timezone-aware datetime.

        Raises:
            ConfigError: ``when`` is naive (it would be ambiguous).
        """
        return self.apply_async(args, kwargs, at=when)

    def map(
        self,
        items: Iterable[Any],
        *,
        queue: str | None = None,
        delay: float | timedelta | None = None,
        at: datetime | None = None,
    ) -> list[Job[R]]:
        """Enqueue one job per item, in chunks of ``resq.producer.CHUNK`` per round trip (bulk enqueue).

        Each item is the positional arguments of one job as a tuple, or else its single argument::

            resize.map((path, width) for path in paths)      # resize(path, width) for each path
            notify.map(user_ids)                              # notify(user_id) for each id

        Args:
            items: the jobs' arguments.
            queue: as for :meth:`apply_async`, for every job.
            delay: as for :meth:`apply_async`, for every job.
            at: as for :meth:`apply_async`, for every job.

        Returns:
            A handle on each job, in order.

        Raises:
            ArgumentsError: an item does not fit the signature (the chunks before it are enqueued).
            ConfigError, EncodeError, PayloadTooLarge, BrokerUnavailable: as for :meth:`apply_async`.
        """
        target = validate_name(queue, "queue name") if queue is not None else self.queue
        due_ms = due_time_ms(delay, at)

        def calls() -> Iterator[Call]:
            for item in items:
                args = item if isinstance(item, tuple) else (item,)
                self.check_arguments(args, None, " (nothing was enqueued for it)")
                yield Call(self.name, args, None, target, due_ms)

        return enqueue_many(self.app, calls())

    def apply_async(
        self,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        queue: str | None = None,
        delay: float | timedelta | None = None,
        at: datetime | None = None,
        job_id: str | None = None,
        priority: int | None = None,
        expires_in: float | timedelta | None = None,
        expires_at: datetime | None = None,
        group: str | None = None,
        depends_on: Sequence[Job[Any] | str] | None = None,
        on_parent_failure: str = "fail",
    ) -> Job[R]:
        """Enqueue the task, keeping task arguments and job options apart.

        Args:
            args: positional arguments of the task.
            kwargs: keyword arguments of the task.
            queue: the queue to use instead of the task's own.
            delay: run after this many seconds (or this ``timedelta``).
            at: run at this timezone-aware datetime.
            job_id: the job's id; enqueueing an id whose job is still live does nothing and returns
                a handle on that job (an idempotency key).
            priority: 0 to 9, instead of the task's own (higher runs first within the queue).
            expires_in: the job expires if not started this long after now (seconds or a ``timedelta``).
            expires_at: the job expires if not started by this timezone-aware datetime.
            group: the group the job belongs to (a tenant, a user): the groups of a queue are served
                round-robin, weighted (``app.group_weight``), so one group's backlog does not hold back
                another's jobs.
            depends_on: jobs (handles or ids) this one waits for: it is stored ``deferred`` and queued once
                every one of them succeeded (see ``docs/workflows.md``).
            on_parent_failure: when a job of ``depends_on`` ends other than succeeded: ``"fail"`` (this
                job ends dead with a ``ParentFailed`` error, without running), ``"cancel"`` (it ends
                cancelled) or ``"run"`` (it runs anyway, once every parent ended).

        Returns:
            A :class:`~resq.Job` handle.

        Raises:
            ConfigError: both ``delay`` and ``at``, a naive ``at``, an invalid queue name or priority; with
                ``depends_on``: a delay, an unknown policy, a parent not found.
            CycleError: ``depends_on`` would make the job wait for itself.
            ArgumentsError, EncodeError, PayloadTooLarge, BrokerUnavailable: as for :meth:`delay`.
        """
        target, due_ms, flow = self._options(args, kwargs, queue, delay, at, priority, expires_in, expires_at, group)
        if depends_on is not None:
            if due_ms:
                raise ConfigError(f"{self.name}: depends_on runs the job when its parents end: drop delay/at")
            return enqueue_dependent(
                self.app,
                self.name,
                args,
                kwargs,
                queue=target,
                parents=list(depends_on),
                policy=on_parent_failure,
                job_id=job_id,
                **flow,
            )
        done = enqueue(self.app, self.name, args, kwargs, queue=target, due_ms=due_ms, job_id=job_id, **flow)
        return done.job

    async def adelay(self, *args: P.args, **kwargs: P.kwargs) -> Job[R]:
        """:meth:`delay` for ``async`` code (FastAPI, Starlette, aiohttp): the job is stored through
        ``redis.asyncio``, so the event loop serves other requests while Redis answers.

        Raises:
            as :meth:`delay`.
        """
        return await self.aapply_async(args, kwargs)

    async def aapply_async(
        self,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        queue: str | None = None,
        delay: float | timedelta | None = None,
        at: datetime | None = None,
        job_id: str | None = None,
        priority: int | None = None,
        expires_in: float | timedelta | None = None,
        expires_at: datetime | None = None,
        group: str | None = None,
    ) -> Job[R]:
        """:meth:`apply_async` for ``async`` code, as :meth:`adelay`."""
        target, due_ms, flow = self._options(args, kwargs, queue, delay, at, priority, expires_in, expires_at, group)
        done = await aenqueue(self.app, self.name, args, kwargs, queue=target, due_ms=due_ms, job_id=job_id, **flow)
        return done.job

    def _options(
        self,
        args: tuple[Any, ...] | list[Any],
        kwargs: dict[str, Any] | None,
        queue: str | None,
        delay: float | timedelta | None,
        at: datetime | None,
        priority: int | None = None,
        expires_in: float | timedelta | None = None,
        expires_at: datetime | None = None,
        group: str | None = None,
    ) -> tuple[str, int, dict[str, Any]]:
        """The queue, due time (ms; 0: now) and flow options (for ``producer.enqueue``) of a job of these
        arguments, checked before anything is enqueued."""
        self.check_arguments(args, kwargs, " (nothing was enqueued)")
        target = validate_name(queue, "queue name") if queue is not None else self.queue
        if priority is not None:
            validate_priority(priority)
        if expires_in is not None and expires_at is not None:
            raise ConfigError("give expires_in or expires_at, not both")
        expires_ms = 0
        if expires_at is not None:
            expires_ms = due_time_ms(None, expires_at) or now_ms()
        elif expires_in is not None:
            expires_ms = now_ms() + int(_positive(expires_in, "expires_in") * 1000)  # type: ignore[operator]
        if group is not None:
            validate_group(group)
            if self.options.unique or self.options.debounce is not None:
                raise ConfigError(
                    f"{self.name} is unique or debounced: its jobs cannot take a group= (not yet supported)"
                )
        return target, due_time_ms(delay, at), {"priority": priority, "expires_ms": expires_ms, "group": group}

    def delay_on_commit(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """Enqueue the task once the surrounding database transaction commits; nothing if it rolls back.

        Outside a transaction the job is enqueued at once. Needs a transaction integration
        (``resq.contrib.django`` in ``INSTALLED_APPS``, or ``app.on_commit = fn``).

        Returns:
            The id the job will have (``app.job(id)`` is its handle once the transaction committed).

        Raises:
            ConfigError: no on-commit function is installed.
            ArgumentsError: the arguments do not match the function's signature (nothing will be enqueued).
        """
        return self.apply_async_on_commit(args, kwargs)

    def apply_async_on_commit(
        self,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        queue: str | None = None,
        delay: float | timedelta | None = None,
        at: datetime | None = None,
        job_id: str | None = None,
    ) -> str:
        """:meth:`apply_async` once the surrounding transaction commits (see :meth:`delay_on_commit`);
        returns the job's id, ``job_id`` or a new one. Arguments and options are checked now; ``delay``
        counts from the commit."""
        on_commit = self.app.on_commit or _default_on_commit
        if on_commit is None:
            raise ConfigError(
                f"{self.name}.delay_on_commit needs a transaction integration: add 'resq.contrib.django' to "
                "INSTALLED_APPS, or set app.on_commit to a function that runs a callback after commit"
            )
        self.check_arguments(args, kwargs, " (nothing will be enqueued)")
        target = validate_name(queue, "queue name") if queue is not None else self.queue
        due_time_ms(delay, at)  # a naive ``at`` or both ``delay`` and ``at`` fail now, not after the commit
        chosen = job_id or new_job_id()

        def send() -> None:
            self.apply_async(args, kwargs, queue=target, delay=delay, at=at, job_id=chosen)

        on_commit(send)
        return chosen
