"""Sentry: report jobs that end dead, tagged with the job, not every failed attempt.

``resq.contrib.sentry.instrument(app)`` adds a plugin to the app: a job that fails and will be retried
leaves a breadcrumb (so the report of its last attempt shows the earlier ones), and a job that ends dead
is captured once, with its exception and traceback, tagged ``resq.job_id``, ``resq.task``,
``resq.queue`` and ``resq.attempt``, and grouped by task and error type (not by job id). Call
``sentry_sdk.init(...)`` as usual in the worker's process (the app module is a good place).

Needs the ``sentry`` extra (``pip install 'resq[sentry]'``); only this module imports ``sentry_sdk``.
"""

from __future__ import annotations

from typing import Any

from resq.app import Resq
from resq.errors import ConfigError
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
    """Reports dead jobs to Sentry; a retried attempt is a breadcrumb, not an issue."""

    def __init__(self) -> None:
        self._sdk = _sdk()

    def on_retry(self, job: Job[Any], exc: BaseException) -> None:
        """Leave a breadcrumb of the failed attempt (its job will run again)."""
        self._sdk.add_breadcrumb(
            category="resq",
            message=f"{job.task} attempt {job.attempt} failed: {type(exc).__name__}: {exc}",
            level="warning",
            data=_tags(job),
        )

    def on_dead(self, job: Job[Any], exc: BaseException) -> None:
        """Capture the exception of a job that ends dead, tagged with the job."""
        with self._sdk.new_scope() as scope:
            for key, value in _tags(job).items():
                scope.set_tag(key, value)
            scope.set_context("resq", {**_tags(job), "hint": f"resq dead retry {job.id}"})
            scope.fingerprint = ["resq", job.task or "?", type(exc).__name__]
            self._sdk.capture_exception(exc)


def _tags(job: Job[Any]) -> dict[str, str]:
    return {
        "resq.job_id": job.id,
        "resq.task": job.task or "?",
        "resq.queue": job.queue,
        "resq.attempt": str(job.attempt),
    }


def instrument(app: Resq) -> SentryPlugin:
    """Report ``app``'s dead jobs to Sentry (in every process that records failures: workers, and the
    schedulers that reap dead workers' jobs).

    Raises:
        ConfigError: ``sentry-sdk`` is not installed.
    """
    plugin = SentryPlugin()
    app.add_plugin(plugin)
    return plugin
