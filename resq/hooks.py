"""Lifecycle hooks and plugins, dispatched with isolation.

``before_*`` and ``*_start`` hooks (set-up) run in registration order; ``after_*``, ``on_*``,
``worker_stop`` and ``scheduler_tick`` in reverse, so a plugin registered first wraps the others;
``around_perform`` context managers nest. A hook that raises is logged with the job id and the hook's
name and never loses or fails the job; only ``Veto`` (from ``before_enqueue``) and ``SkipJob`` (from
``before_perform``) change the flow.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from resq.errors import ConfigError, SkipJob, Veto
from resq.log import get_logger

if TYPE_CHECKING:
    from resq.job import Job

__all__ = ["HOOK_NAMES", "PLUGIN_GROUP", "Hooks", "Plugin"]

#: Every hook name, in the order of a job's life.
HOOK_NAMES = (
    "before_enqueue",
    "after_enqueue",
    "before_perform",
    "around_perform",
    "after_perform",
    "on_success",
    "on_failure",
    "on_retry",
    "on_dead",
    "worker_start",
    "worker_stop",
    "child_start",
    "scheduler_tick",
)
#: The entry-point group plugins are discovered from.
PLUGIN_GROUP = "resq.plugins"
#: Hooks whose exceptions are allowed to change the flow, and which exception each may raise.
_FLOW: dict[str, type[Exception]] = {"before_enqueue": Veto, "before_perform": SkipJob}
#: Hooks run in registration order (set-up); every other hook runs in reverse (tear-down, outcome).
IN_ORDER = frozenset({"before_enqueue", "before_perform", "worker_start", "child_start"})

log = get_logger(__name__)


class Plugin:
    """Base class of plugins: override the hooks you need (every method is a no-op here).

    Example::

        class Timing(resq.Plugin):
            def before_perform(self, job): ...
            def after_perform(self, job, result): ...

        app.add_plugin(Timing())
    """

    def before_enqueue(self, job: Job[Any]) -> None:
        """Called by the producer with the job before it is stored; may edit ``job.options`` or raise ``Veto``."""

    def after_enqueue(self, job: Job[Any]) -> None:
        """Called by the producer (or scheduler) with the job once it is stored (not for a duplicate id)."""

    def before_perform(self, job: Job[Any]) -> None:
        """Called in the worker child with the job before each attempt; may raise ``SkipJob``."""

    def after_perform(self, job: Job[Any], result: Any) -> None:
        """Called in the worker child with the job and its result after an attempt that returned."""

    def on_success(self, job: Job[Any], result: Any) -> None:
        """Called in the worker child with the job and its result after ``after_perform``."""

    def on_failure(self, job: Job[Any], exc: BaseException) -> None:
        """Called in the worker child with the job and the exception after every failed attempt."""

    def on_retry(self, job: Job[Any], exc: BaseException) -> None:
        """Called in the worker child with the job and the exception after ``on_failure`` when it will retry."""

    def on_dead(self, job: Job[Any], exc: BaseException) -> None:
        """Called in the worker child with the job and the exception after ``on_failure`` when no attempt is left."""

    def worker_start(self, worker: Any) -> None:
        """Called with the worker's supervisor once, before it starts its children."""

    def worker_stop(self, worker: Any) -> None:
        """Called with the worker's supervisor once, after its last child exited."""

    def child_start(self, worker: Any) -> None:
        """Called in each worker child with the child right after the fork, before it fetches."""

    def scheduler_tick(self, scheduler: Any, report: Any) -> None:
        """Called with the scheduler and its tick report (a ``TickReport``) after each tick."""


class Hooks:
    """The hooks registered with one app."""

    def __init__(self) -> None:
        self._hooks: dict[str, list[Callable[..., Any]]] = {name: [] for name in HOOK_NAMES}
        self._plugins_loaded = False

    def add(self, name: str, fn: Callable[..., Any]) -> None:
        """Register ``fn`` for hook ``name``.

        Raises:
            ConfigError: an unknown hook name or a non-callable.
        """
        if name not in self._hooks:
            raise ConfigError(f"unknown hook {name!r}; hooks are: {', '.join(HOOK_NAMES)}")
        if not callable(fn):
            raise ConfigError(f"hook {name} must be callable, got {fn!r}")
        self._hooks[name].append(fn)

    def add_plugin(self, plugin: object) -> None:
        """Register every hook method a plugin object defines (no-op methods of ``Plugin`` are skipped)."""
        for name in HOOK_NAMES:
            method = getattr(plugin, name, None)
            if method is None or getattr(type(plugin), name, None) is getattr(Plugin, name, None):
                continue
            self.add(name, method)

    def load_entry_points(self) -> None:
        """Register the plugins of the ``resq.plugins`` entry-point group (once)."""
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in entry_points(group=PLUGIN_GROUP):
            try:
                obj = ep.load()
                self.add_plugin(obj() if isinstance(obj, type) else obj)
            except Exception as exc:
                log.error("plugin_load_failed", plugin=ep.name, error=repr(exc))

    def registered(self, name: str) -> list[Callable[..., Any]]:
        """The hooks registered for ``name``, in registration order."""
        return list(self._hooks[name])

    def run(
        self, name: str, *args: Any, job: Job[Any] | None = None, extra: tuple[Callable[..., Any], ...] = ()
    ) -> None:
        """Call every hook for ``name`` with ``args``, isolating failures.

        Args:
            name: the hook.
            args: what the hooks receive.
            job: the job concerned (for the log line of a failing hook).
            extra: per-task hooks, run innermost (after app hooks for those in :data:`IN_ORDER`, before
                them otherwise).

        Raises:
            Veto, SkipJob: only from the hook allowed to raise it.
        """
        registered = self._hooks.get(name)
        if not registered and not extra:
            return  # the common case: nothing to call
        hooks = [*(registered or ()), *extra]
        if name not in IN_ORDER:
            hooks.reverse()
        for fn in hooks:
            self._call(name, fn, args, job)

    def _call(self, name: str, fn: Callable[..., Any], args: tuple[Any, ...], job: Job[Any] | None) -> None:
        allowed = _FLOW.get(name)
        try:
            fn(*args)
        except Exception as exc:
            if allowed is not None and isinstance(exc, allowed):
                raise
            log.error(
                "hook_failed",
                hook=name,
                hook_fn=getattr(fn, "__qualname__", repr(fn)),
                job_id=getattr(job, "id", None),
                error=f"{type(exc).__name__}: {exc}",
                exc_info=True,
            )

    @contextlib.contextmanager
    def around_perform(self, job: Job[Any]) -> Iterator[None]:
        """Nest every ``around_perform`` context manager around the task (a failing one is skipped)."""
        with contextlib.ExitStack() as stack:
            for fn in self._hooks["around_perform"]:
                try:
                    stack.enter_context(fn(job))
                except Exception as exc:
                    log.error(
                        "hook_failed",
                        hook="around_perform",
                        job_id=job.id,
                        error=f"{type(exc).__name__}: {exc}",
                        exc_info=True,
                    )
            yield
