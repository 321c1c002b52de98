"""Tasks: a function registered with an app, and the ways to enqueue it."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from resq.clock import due_time_ms
from resq.errors import ArgumentsError, ConfigError, did_you_mean
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
        hooks=hooks,
    )


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

        Returns:
            A :class:`~resq.Job` handle.

        Raises:
            ConfigError: both ``delay`` and ``at``, a naive ``at``, or an invalid queue name.
            ArgumentsError, EncodeError, PayloadTooLarge, BrokerUnavailable: as for :meth:`delay`.
        """
        target, due_ms = self._options(args, kwargs, queue, delay, at)
        done = enqueue(self.app, self.name, args, kwargs, queue=target, due_ms=due_ms, job_id=job_id)
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
    ) -> Job[R]:
        """:meth:`apply_async` for ``async`` code, as :meth:`adelay`."""
        target, due_ms = self._options(args, kwargs, queue, delay, at)
        done = await aenqueue(self.app, self.name, args, kwargs, queue=target, due_ms=due_ms, job_id=job_id)
        return done.job

    def _options(
        self,
        args: tuple[Any, ...] | list[Any],
        kwargs: dict[str, Any] | None,
        queue: str | None,
        delay: float | timedelta | None,
        at: datetime | None,
    ) -> tuple[str, int]:
        """The queue and due time (ms; 0: now) of a job of these arguments, checked before anything is
        enqueued."""
        self.check_arguments(args, kwargs, " (nothing was enqueued)")
        target = validate_name(queue, "queue name") if queue is not None else self.queue
        return target, due_time_ms(delay, at)

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
