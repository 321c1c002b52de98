"""Sentry: report jobs that end dead, tagged with the job, not every failed attempt.

``resq.contrib.sentry.instrument(app)`` adds a plugin to the app: a job that fails and will be retried
is not reported, and a job that ends dead is captured once (its earlier failed attempts, read from its
history, are the report's breadcrumbs), with its exception and traceback, tagged ``resq.job_id``, ``resq.task``,
``resq.queue`` and ``resq.attempt``, and grouped by task and error type (not by job id). Call
``sentry_sdk.init(...)`` as usual in the worker's process (the app module is a good place).

Needs the ``sentry`` extra (``pip install 'resq[sentry]'``); only this module imports ``sentry_sdk``.
"""

from __future__ import annotations

from typing import Any

from resq.app import Resq
from resq.errors import ConfigError, ResqError
from resq.hooks import Plugin
from resq.job import Job

__all__ = ["SentryPlugin", "instrument"]

#: What ``instrument`` says without the ``sentry-sdk`` package.
NEEDS_SENTRY = "resq.contrib.sentry needs the sentry extra: pip install 'resq[sentry]'"


def _sdk() -> Any:
    try:
        import sentry_sdk
    except ImportError:
        raise ConfigError(NEEDS_SENTRY) from None
    return sentry_sdk


class SentryPlugin(Plugin):
    """Reports dead jobs to Sentry; a retried attempt is a breadcrumb of that report, not an issue."""

    def __init__(self) -> None:
        self._sdk = _sdk()

    def on_dead(self, job: Job[Any], exc: BaseException) -> None:
        """Capture the exception of a job that ends dead, tagged with the job, in a scope of its own: its
        breadcrumbs are the job's earlier failed attempts (read from its history, whichever process ran
        them), not what other jobs of this process left."""
        earlier = self._earlier_failures(job)
        with self._sdk.isolation_scope() as isolated, self._sdk.new_scope() as scope:
            isolated.clear_breadcrumbs()
            scope.clear_breadcrumbs()
            for event in earlier:
                scope.add_breadcrumb(
                    category="resq",
                    message=f"{job.task} attempt {event.get('attempt')} failed: {event.get('error', '?')}",
                    level="warning",
                    data={**_tags(job), "resq.attempt": str(event.get("attempt"))},
                )
            for key, value in _tags(job).items():
                scope.set_tag(key, value)
            scope.set_context("resq", {**_tags(job), "hint": f"resq dead retry {job.id}"})
            scope.fingerprint = ["resq", job.task or "?", type(exc).__name__]
            self._sdk.capture_exception(exc)

    @staticmethod
    def _earlier_failures(job: Job[Any]) -> list[dict[str, Any]]:
        """The failed attempts before the last one, from the job's history (none when it cannot be read:
        the report goes out without them)."""
        try:
            history = job.app.job_store.history(job.queue, job.id)
        except ResqError:
            return []
        return [e for e in history if e.get("event") == "failed" and int(e.get("attempt") or 0) < job.attempt]


def _tags(job: Job[Any]) -> dict[str, str]:
    return {
        "resq.job_id": job.id,
        "resq.task": job.task or "?",
        "resq.queue": job.queue,
        "resq.attempt": str(job.attempt),
    }


#: resq's loggers that Sentry's logging integration must not turn into events: their error lines are
#: about the jobs this plugin reports itself (each dead job would be a second issue, from its log line).
JOB_LOGGERS = ("resq.worker",)


def _quiet_resq_loggers() -> None:
    from sentry_sdk.integrations.logging import ignore_logger

    for name in JOB_LOGGERS:
        ignore_logger(name)


def instrument(app: Resq) -> SentryPlugin:
    """Report ``app``'s dead jobs to Sentry (in every process that records failures: workers, and the
    schedulers that reap dead workers' jobs).

    Raises:
        ConfigError: ``sentry-sdk`` is not installed.
    """
    plugin = SentryPlugin()
    _quiet_resq_loggers()
    app.add_plugin(plugin)
    return plugin
