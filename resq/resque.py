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
import re
import time
import traceback
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from resq.broker.keys import ResqueKeys
from resq.clock import due_time_ms, now_ms
from resq.errors import ConfigError
from resq.log import get_logger
from resq.outcomes import TALLIES
from resq.settings import validate_name

if TYPE_CHECKING:
    from resq.app import Resq
    from resq.job import Job

__all__ = [
    "DEFAULT_NAMESPACE",
    "RESQUE_META",
    "STATUS_SCHEDULED",
    "STATUS_WAITING",
    "Resque",
    "ResqueDelayed",
    "ResqueOutcomes",
    "dumps",
    "failure_record",
    "validate_namespace",
]

log = get_logger("resq.resque")

#: The Resque family's default namespace (every key is ``resque:<key>``).
DEFAULT_NAMESPACE = "resque"
#: php-resque's statuses of a job (``job:<id>:status``), and php-resque-ex-scheduler's of a delayed one.
STATUS_WAITING = 1
STATUS_RUNNING = 2
STATUS_FAILED = 3
STATUS_COMPLETE = 4
STATUS_SCHEDULED = 63
#: The key of a job's ``meta`` that a job taken from a Resque queue carries: ``{"ns", "queue", "worker",
#: "payload"}`` (its namespace, Resque queue, the id of the worker that took it, the payload as pushed).
RESQUE_META = "resque"
#: What a Resque namespace may hold (``validate_namespace``).
_NAMESPACE = re.compile(r"[A-Za-z0-9_.:/-]{1,200}")


def validate_namespace(namespace: object) -> str:
    """``namespace`` if it is a Resque namespace resq takes: letters, digits and ``_.:/-`` (no spaces,
    braces or glob characters, which an ACL key pattern would read).

    Raises:
        ConfigError: it is not.
    """
    if not isinstance(namespace, str) or not _NAMESPACE.fullmatch(namespace):
        raise ConfigError(f"invalid Resque namespace {namespace!r}: e.g. 'resque' or 'resque:App'")
    return namespace


class Resque:
    """Producing jobs in the Resque family's format, on the app's Redis, under ``namespace``.

    Args:
        app: the app (its Redis and its connection).
        namespace: the Resque namespace of the workers that take the jobs (Ruby's ``Redis::Namespace``,
            php's ``PREFIX``, node's ``connection.namespace``).
    """

    def __init__(self, app: Resq, namespace: str = DEFAULT_NAMESPACE) -> None:
        self.app = app
        self.keys = ResqueKeys(validate_namespace(namespace))

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
            return job_id, dumps(fields)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"a Resque job's args must be JSON values (Ruby, PHP and node read JSON): {exc}"
            ) from None


def _status(status: int, started: int | None = None) -> str:
    """php-resque's status JSON, updated now (``started``: when it started, default now)."""
    now = int(time.time())
    return dumps({"status": status, "updated": now, "started": now if started is None else started})


def dumps(value: Any) -> str:
    """JSON as the Resque family writes it: compact, UTF-8, whole floats as integers, so the text is the
    one JavaScript's ``JSON.stringify`` makes of it again (node-resque removes a failure record by its
    exact text).

    Raises:
        TypeError, ValueError: a value JSON cannot carry.
    """
    return json.dumps(_whole(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _whole(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if isinstance(value, dict):
        return {k: _whole(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_whole(v) for v in value]
    return value


def failure_record(payload: str, queue: str, worker: str, exception: str, error: str, backtrace: list[str]) -> str:
    """A failure record as Ruby's ``Failure::Redis`` writes it to ``failed`` (the fields in its order), for
    the job pushed as ``payload``; Ruby's resque-web and node-resque list it and retry it (which queues
    ``payload`` on ``queue`` again)."""
    try:
        parsed: Any = json.loads(payload)
    except ValueError:
        parsed = payload
    record = {
        "failed_at": time.strftime("%Y/%m/%d %H:%M:%S UTC", time.gmtime()),
        "payload": parsed,
        "exception": exception,
        "error": error,
        "backtrace": backtrace,
        "worker": worker,
        "queue": queue,
    }
    return dumps(record)


class ResqueDelayed:
    """The Resque family's delayed jobs, moved into their queues when due by ``resq scheduler --resque``:
    resque-scheduler's (pushed by Ruby, php or node producers, or ``enqueue_at``) and
    php-resque-ex-scheduler's (CakeResque's ``enqueueIn`` / ``enqueueAt``). Any number of resq
    schedulers, beside any of theirs, move each job once.

    Args:
        app: the app (its Redis).
        namespace: the Resque namespace of the delayed jobs.
    """

    #: Items moved per script call, and due seconds looked at per pass and layout.
    BATCH = 100
    SECONDS = 10

    def __init__(self, app: Resq, namespace: str = DEFAULT_NAMESPACE) -> None:
        self.app = app
        self.keys = ResqueKeys(validate_namespace(namespace))
        #: seconds whose head item names no queue, already logged (the Resque scheduler they belong to,
        #: which knows their class's queue, moves them)
        self._stuck: set[tuple[int, bool]] = set()

    def promote(self, now_ms: int) -> tuple[int, int | None]:
        """Move every delayed job due at ``now_ms``; returns (moved, when the next second after now is due,
        in ms, or None). A due second left behind (its head names no queue) is not a wake-up: it is looked
        at again on the next pass."""
        wire = self.app.broker.resque
        moved, seconds = 0, []
        for php in (False, True):
            for timestamp in wire.due_seconds(self.keys, now_ms // 1000, self.SECONDS, php):
                while (count := self._move(timestamp, php)) == self.BATCH:
                    moved += count
                moved += count
            seconds.append(wire.next_second(self.keys, now_ms // 1000, php))  # not a second left due
        nxt = min((ts for ts in seconds if ts is not None), default=None)
        return moved, None if nxt is None else nxt * 1000

    def _move(self, timestamp: int, php: bool) -> int:
        """Move a batch from the head of one second's list: the items up to the first that names no queue."""
        wire = self.app.broker.resque
        items = wire.delayed_items(self.keys, timestamp, self.BATCH, php)
        movable: list[tuple[str, str, str]] = []
        tracked: list[tuple[str, str]] = []
        for item in items:
            found = _delayed(item, php)
            if found is None:
                if (timestamp, php) not in self._stuck:
                    self._stuck.add((timestamp, php))
                    log.warning("resque_delayed_without_queue", second=timestamp, item=item[:200])
                break
            queue, job, track_id = found
            movable.append((item, queue, job))
            if track_id is not None:
                tracked.append((track_id, _status(STATUS_WAITING)))
        if not movable and items:
            return 0
        count = wire.move_delayed(self.keys, timestamp, movable, php)
        if count:
            wire.waiting(self.keys, tracked)
            log.info("resque_delayed_moved", jobs=count, second=timestamp, namespace=self.keys.namespace)
        return count


def _delayed(item: str, php: bool) -> tuple[str, str, str | None] | None:
    """The queue a delayed item names, the job to push there and, for a php item to track, its id; None
    when the item names no valid queue.

    A resque-scheduler item is pushed as it is. A php-resque-ex-scheduler item
    (``{"class", "args": [{..., "id", "s_time"}], "queue", "track"}``) becomes the job php-resque-ex's
    ``Resque::enqueue`` makes of it: ``{"class", "args", "id"}``, the id the one it was scheduled with."""
    try:
        found = json.loads(item)
        queue = validate_name(found["queue"], "queue name")
    except (ValueError, TypeError, KeyError, ConfigError):
        return None
    if not php:
        return queue, item, None
    args = found.get("args")
    first = args[0] if isinstance(args, list) and args and isinstance(args[0], dict) else {}
    job_id = str(first.get("id") or uuid.uuid4().hex)
    job = dumps({"class": found.get("class"), "args": args if isinstance(args, list) else [], "id": job_id})
    return queue, job, job_id if found.get("track") else None


class ResqueOutcomes:
    """The Resque family's bookkeeping of jobs taken from their queues (``RESQUE_META`` in the job's meta):
    ``stat:processed`` for each that ends, and a failure record in ``failed`` (with ``stat:failed``) for
    each that ends dead, so their tools count and retry them. Registered as a plugin by the app when a
    task names a ``resque_class``."""

    def __init__(self, app: Resq) -> None:
        self.app = app

    def before_perform(self, job: Job[Any]) -> None:
        found = _taken(job)
        if found is not None and found.get("id"):
            job.options[_STARTED] = started = int(time.time())
            self.app.broker.resque.track(ResqueKeys(found["ns"]), found["id"], _status(STATUS_RUNNING, started))

    def on_success(self, job: Job[Any], result: Any) -> None:
        found = _taken(job)
        if found is None:
            return
        keys = ResqueKeys(found["ns"])
        counters = job.options.setdefault(TALLIES, [])  # added with resq's own, not a round trip per job
        counters += [keys.stat("processed"), keys.stat("processed", found["worker"])]
        status = _final(found, job, STATUS_COMPLETE)
        if status is not None:
            self.app.broker.resque.track(keys, *status, ended=True)

    def on_dead(self, job: Job[Any], exc: BaseException) -> None:
        found = _taken(job)
        if found is None:
            return
        frames = reversed(traceback.extract_tb(exc.__traceback__))  # innermost first, as Ruby's
        backtrace = [f"{f.filename}:{f.lineno}:in `{f.name}'" for f in frames]
        record = failure_record(
            found["payload"], found["queue"], found["worker"], type(exc).__name__, str(exc), backtrace
        )
        status = _final(found, job, STATUS_FAILED)
        self.app.broker.resque.failed(ResqueKeys(found["ns"]), found["worker"], record, status=status)


#: Where ``ResqueOutcomes`` keeps, in a job's options, when its attempt started (unix seconds).
_STARTED = "resque_started"


def _final(found: dict[str, str], job: Job[Any], status: int) -> tuple[str, str] | None:
    """The job's id and its final php-resque status JSON, if its payload has an id (php-resque's)."""
    if not found.get("id"):
        return None
    return found["id"], _status(status, job.options.get(_STARTED))


def _taken(job: Job[Any]) -> dict[str, str] | None:
    """What a job taken from a Resque queue carries (``RESQUE_META``), or None for any other job."""
    found = job.options.get("meta", {}).get(RESQUE_META)
    return found if isinstance(found, dict) else None
