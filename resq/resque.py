"""Jobs for the Resque family's workers: Ruby Resque, php-resque, CakeResque and node-resque
(``app.resque``, ``docs/resque.md``).

``app.resque.enqueue("SendMail", ["a@b.c", "hi"], queue="mail")`` pushes the job those workers take, in
their format (``resq.broker.resque``); ``enqueue_at`` and ``enqueue_in`` leave it to a resque-scheduler
(Ruby, PHP or node's ``Scheduler``) to queue it on time. ``track=True`` writes the job's status where
php-resque-ex and CakeResque read it.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from resq.broker.keys import ResqueKeys
from resq.clock import due_time_ms, now_ms
from resq.errors import ConfigError
from resq.settings import validate_name

if TYPE_CHECKING:
    from resq.app import Resq

__all__ = ["DEFAULT_NAMESPACE", "STATUS_SCHEDULED", "STATUS_WAITING", "Resque"]

#: The Resque family's default namespace (every key is ``resque:<key>``).
DEFAULT_NAMESPACE = "resque"
#: php-resque's status of a job waiting in its queue, and php-resque-ex-scheduler's of a delayed one.
STATUS_WAITING = 1
STATUS_SCHEDULED = 63


class Resque:
    """Producing jobs in the Resque family's format, on the app's Redis, under ``namespace``.

    Args:
        app: the app (its Redis and its connection).
        namespace: the Resque namespace of the workers that take the jobs (Ruby's ``Redis::Namespace``,
            php's ``PREFIX``, node's ``connection.namespace``).
    """

    def __init__(self, app: Resq, namespace: str = DEFAULT_NAMESPACE) -> None:
        if not isinstance(namespace, str) or not namespace or any(c in namespace for c in "{}\n "):
            raise ConfigError(f"invalid Resque namespace {namespace!r}: e.g. 'resque' or 'resque:App'")
        self.app = app
        self.keys = ResqueKeys(namespace)

    def enqueue(self, cls: str, args: Sequence[Any] = (), queue: str = "default", *, track: bool = False) -> str:
        """Queue a job of class ``cls`` for the Resque family's workers; returns its id.

        Args:
            cls: the job's class as its workers name it (``"SendMail"``, ``"Job\\\\Work\\\\TestJob"``).
            args: its arguments, a list of JSON values. php-resque jobs read one object: pass ``[{...}]``.
            queue: the Resque queue (``resque:queue:<queue>``).
            track: also write its php-resque status (``resque:job:<id>:status``, waiting).

        Raises:
            ConfigError: a bad class, queue or namespace, or arguments JSON cannot carry (nothing is sent).
        """
        job_id, payload = self._payload(cls, args, queue, {"queue_time": time.time()})
        status = (job_id, _status(STATUS_WAITING)) if track else None
        self.app.broker.resque.enqueue(self.keys, queue, payload, status)
        return job_id

    def enqueue_at(
        self, when: datetime, cls: str, args: Sequence[Any] = (), queue: str = "default", *, track: bool = False
    ) -> str:
        """Leave a job to a resque-scheduler, to queue at ``when`` (a timezone-aware datetime, rounded up to
        the whole second the scheduler keeps); returns its id. Arguments as :meth:`enqueue`."""
        return self._delayed(due_time_ms(None, when), cls, args, queue, track)

    def enqueue_in(
        self,
        delay: float | timedelta,
        cls: str,
        args: Sequence[Any] = (),
        queue: str = "default",
        *,
        track: bool = False,
    ) -> str:
        """Leave a job to a resque-scheduler, to queue ``delay`` (seconds or a timedelta) from now; returns
        its id. Arguments as :meth:`enqueue`."""
        return self._delayed(due_time_ms(delay, None) or now_ms(), cls, args, queue, track)

    def _delayed(self, due_ms: int, cls: str, args: Sequence[Any], queue: str, track: bool) -> str:
        timestamp = math.ceil(due_ms / 1000)
        job_id, item = self._payload(cls, args, queue, {"queue": queue})
        status = (job_id, _status(STATUS_SCHEDULED)) if track else None
        self.app.broker.resque.enqueue_at(self.keys, timestamp, item, status)
        return job_id

    def _payload(self, cls: str, args: Sequence[Any], queue: str, extra: dict[str, Any]) -> tuple[str, str]:
        """A new job's id and its JSON: ``class`` and ``args`` first (Ruby's ``dequeue`` matches the text),
        compact, as Ruby's MultiJson writes it."""
        if not isinstance(cls, str) or not cls.strip():
            raise ConfigError(f"a Resque job's class is its workers' class name, e.g. 'SendMail', got {cls!r}")
        if isinstance(args, str | bytes | dict) or not isinstance(args, Sequence):
            raise ConfigError(f"a Resque job's args are a list, e.g. ['a@b.c'] or [{{'to': 'a@b.c'}}], got {args!r}")
        validate_name(queue, "queue name")
        job_id = uuid.uuid4().hex
        fields = {"class": cls, "args": list(args), **extra, "id": job_id}
        try:
            return job_id, json.dumps(fields, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"a Resque job's args must be JSON values (Ruby, PHP and node read JSON): {exc}"
            ) from None


def _status(status: int) -> str:
    """php-resque's status JSON for a job just made."""
    now = int(time.time())
    return json.dumps({"status": status, "updated": now, "started": now}, separators=(",", ":"))
