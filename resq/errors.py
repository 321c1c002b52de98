"""Every exception resq raises, under one root.

::

    ResqError
    ├── ConfigError                 bad settings, task options, queue names, cron entries
    ├── ArgumentsError (TypeError)  arguments that do not match the task's signature
    ├── EncodeError (TypeError)     an argument or result msgpack cannot carry
    ├── DecodeError                 a payload that cannot be decoded (keeps the raw bytes)
    │   └── DecryptError            a sealed payload that cannot be opened: unknown key, or altered
    ├── PayloadTooLarge             an encoded job over ``max_payload_bytes``
    ├── BrokerError                 Redis refused a command (a wrong type, out of memory, …)
    │   ├── BrokerUnavailable       Redis could not be reached (after bounded retries, for producers)
    │   └── BrokerRefused           Redis refused resq for good: credentials, ACL, TLS certificate
    ├── UnknownJob                  ``app.job(id)`` for an id Redis does not know
    ├── ResultTimeout               ``Job.result(timeout=…)`` ran out of time
    └── JobFailed                   the job ended dead: carries the remote type, message, traceback
        └── JobCancelled            the job was cancelled

Control flow, raised inside tasks and hooks (not errors of resq itself):

::

    Retry        ``raise Retry(delay=…)`` asks for another attempt
    Veto         a ``before_enqueue`` hook refuses the job
    SkipJob      a ``before_perform`` hook skips the job (status ``cancelled``)
    SoftTimeout  raised inside a task when its ``soft_timeout`` elapses
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "ArgumentsError",
    "BrokenKey",
    "BrokerError",
    "BrokerRefused",
    "BrokerUnavailable",
    "ConfigError",
    "CycleError",
    "DecodeError",
    "DecryptError",
    "EncodeError",
    "JobCancelled",
    "JobFailed",
    "PayloadTooLarge",
    "RateLimited",
    "ResqError",
    "ResultTimeout",
    "Retry",
    "SkipJob",
    "Snooze",
    "SoftTimeout",
    "UnknownJob",
    "Veto",
    "did_you_mean",
]


class ResqError(Exception):
    """The root of every error resq raises."""


class ConfigError(ResqError):
    """Invalid configuration: a setting, a task option, a queue name, a schedule entry."""


class CycleError(ConfigError):
    """``depends_on`` would make a cycle: a job would wait, through its parents, for itself (nothing is
    enqueued)."""


class ArgumentsError(ResqError, TypeError):
    """A job's arguments do not match its task's signature: raised by ``.delay()`` and friends (nothing is
    enqueued); in a worker (a job from a producer with an older signature) the job goes dead at once."""


class EncodeError(ResqError, TypeError):
    """A value cannot be carried by the msgpack payload format."""


class DecodeError(ResqError):
    """A payload cannot be decoded; ``raw`` keeps the bytes that failed."""

    def __init__(self, message: str, raw: bytes = b"") -> None:
        super().__init__(message)
        self.raw = raw


class DecryptError(DecodeError):
    """A sealed payload (``encrypt=True``) cannot be opened: it names a key this process does not hold,
    or it fails authentication (altered, moved from another job, or a different key under that id).
    ``key_id`` is the id the seal names; ``raw`` keeps the seal. A worker makes such a job dead."""

    def __init__(self, message: str, raw: bytes = b"", key_id: str = "") -> None:
        super().__init__(message, raw)
        self.key_id = key_id


class PayloadTooLarge(ResqError):
    """An encoded job is larger than the configured ``max_payload_bytes``."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"encoded job is {size} bytes, over the limit of {limit} bytes (max_payload_bytes)")
        self.size = size
        self.limit = limit


class BrokerError(ResqError):
    """Redis answered a command with an error (a key of the wrong type, out of memory, …)."""


class BrokerUnavailable(BrokerError):
    """Redis could not be reached (producers and the CLI retry for ``broker_retry_s`` first)."""


class BrokerRefused(BrokerError):
    """Redis refused resq for a reason that waiting will not fix: a wrong user or password, an ACL user
    that may not run a command or touch a key resq uses, a TLS certificate that cannot be verified.
    Never retried: workers and the CLI stop at once with this message."""


class BrokenKey(BrokerError):
    """A key in resq's namespace holds another type than resq keeps there (something else wrote to it):
    a script found it before writing anything, and names it. Workers set the key aside (rename it, see
    ``Admin.set_aside``) and go on."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


class UnknownJob(ResqError):
    """No job with this id is known to Redis (never enqueued, or expired)."""


class ResultTimeout(ResqError):
    """``Job.result(timeout=…)`` returned before the job finished."""


class JobFailed(ResqError):
    """The job ended without a result; carries the remote exception as text.

    Attributes:
        job_id: the failed job's id.
        exc_type: the remote exception's qualified type name (also ``type``).
        exc_message: the remote exception's message (also ``message``).
        traceback: the remote traceback, as text.
    """

    def __init__(self, job_id: str, exc_type: str, exc_message: str, traceback: str = "") -> None:
        super().__init__(f"job {job_id} failed: {exc_type}: {exc_message}")
        self.job_id = job_id
        self.exc_type = exc_type
        self.exc_message = exc_message
        self.traceback = traceback

    @property
    def type(self) -> str:
        """The remote exception's qualified type name (``exc_type``)."""
        return self.exc_type

    @property
    def message(self) -> str:
        """The remote exception's message (``exc_message``)."""
        return self.exc_message


class JobCancelled(JobFailed):
    """The job was cancelled before it could finish."""


class Retry(Exception):
    """Raise inside a task to ask for another attempt.

    Args:
        delay: seconds (or a ``timedelta``) before the next attempt; ``None`` uses the task's backoff.

    Example::

        @app.task(retries=5)
        def fetch(url):
            if rate_limited():
                raise Retry(delay=30)
    """

    def __init__(self, delay: float | object | None = None, reason: str = "retry requested") -> None:
        super().__init__(reason)
        self.delay = delay
        self.reason = reason


class Snooze(Exception):
    """Raise inside a task to run it again later **without counting an attempt** (not a failure: no
    retry is used up, no failure hook runs). For work that is not ready yet.

    Args:
        delay: seconds (or a ``timedelta``) before it runs again.

    Example::

        @app.task
        def publish(post_id):
            if not rendered(post_id):
                raise resq.Snooze(30)
    """

    def __init__(self, delay: float | object = 1.0, reason: str = "snoozed") -> None:
        super().__init__(reason)
        self.delay = delay
        self.reason = reason


class RateLimited(Snooze):
    """Raise inside a task when a service it calls refuses for now (an HTTP 429): the job runs again in
    ``retry_in`` seconds, without counting an attempt.

    Example::

        @app.task(retries=3)
        def sync(account):
            reply = api.get(account)
            if reply.status_code == 429:
                raise resq.RateLimited(retry_in=float(reply.headers.get("Retry-After", 30)))
    """

    def __init__(self, retry_in: float | object = 30.0, reason: str = "rate limited") -> None:
        super().__init__(retry_in, reason)
        self.retry_in = retry_in


class Veto(Exception):
    """Raised by a ``before_enqueue`` hook to refuse a job: nothing is enqueued."""


class SkipJob(Exception):
    """Raised by a ``before_perform`` hook to skip a job: its status becomes ``cancelled``."""


class SoftTimeout(Exception):
    """Raised inside a task when its ``soft_timeout`` elapses, so it can clean up."""


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """The known name ``word`` most likely stands for, or None.

    In this order: the same name up to case, ``-``/``_`` and a plural ending (``retry`` → ``retries``);
    the only name that ``word`` is a prefix of, or that is a prefix of ``word`` (``retry_onn`` →
    ``retry_on``); else the closest spelling (``difflib``, ratio 0.6 at least).
    """
    names = list(choices)
    stem = _stem(word)
    same = [name for name in names if _stem(name) == stem]
    if same:
        return same[0]
    if len(word) >= 3:
        prefixed = [name for name in names if name.startswith(word) or word.startswith(name)]
        if len(prefixed) == 1:
            return prefixed[0]
    close = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    return close[0] if close else None


def _stem(name: str) -> str:
    """``name`` without case, with ``_`` for ``-`` and without a plural ending."""
    base = name.lower().replace("-", "_")
    if base.endswith("ies"):
        return base[:-3] + "y"
    return base[:-1] if base.endswith("s") and not base.endswith("ss") else base
