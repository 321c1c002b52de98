"""OpenTelemetry tracing of resq jobs (``pip install resq[otel]``).

:func:`instrument` registers hooks on an app:

- in the producer, a ``PRODUCER`` span ``send {queue}`` around each new job's enqueue (from
  ``before_enqueue`` to ``after_enqueue``), a child of the span current in the caller (the request's);
  its W3C trace context travels in the job's meta (``meta["otel"]``);
- in the worker, a ``CONSUMER`` span ``process {queue}`` around each attempt (``around_perform``), a
  child of the producer's span; an attempt that raises records the exception and sets an error status.

Attributes follow the OpenTelemetry messaging conventions: ``messaging.system`` (``"resq"``),
``messaging.destination.name`` (the queue), ``messaging.message.id`` (the job id),
``messaging.operation.type`` and ``messaging.operation.name`` (``send`` / ``process``), plus
``resq.task`` and, on the worker, ``resq.attempt``.

Example::

    from resq.contrib.otel import instrument

    instrument(app)  # the global tracer provider; or instrument(app, tracer_provider=provider)
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from resq.app import Resq
from resq.errors import ConfigError
from resq.job import Job

try:
    from opentelemetry import propagate, trace
    from opentelemetry.trace import Span, SpanKind, Status, StatusCode
except ImportError as exc:  # pragma: no cover - the otel extra is missing
    raise ConfigError("resq.contrib.otel needs OpenTelemetry: pip install 'resq[otel]'") from exc

__all__ = ["META_KEY", "SYSTEM", "Instrumentor", "instrument", "uninstrument"]

#: The key of the job's meta holding the W3C trace context (``traceparent``, ``tracestate``).
META_KEY = "otel"
#: The value of ``messaging.system``.
SYSTEM = "resq"
#: Producer spans waiting for their ``after_enqueue`` at most (a vetoed or duplicate job has none: the
#: oldest is ended when the bound is reached, or when its id is enqueued again).
MAX_PENDING = 1024

_instrumented: weakref.WeakKeyDictionary[Resq, Instrumentor] = weakref.WeakKeyDictionary()


class Instrumentor:
    """The tracing hooks of one app (made by :func:`instrument`); :meth:`uninstrument` turns them off."""

    def __init__(self, app: Resq, tracer_provider: trace.TracerProvider | None = None) -> None:
        self.app = app
        self.tracer = trace.get_tracer(__name__, tracer_provider=tracer_provider)
        self.enabled = True
        self._pending: OrderedDict[str, Span] = OrderedDict()
        self._lock = threading.Lock()
        app.hooks.add("before_enqueue", self.before_enqueue)
        app.hooks.add("after_enqueue", self.after_enqueue)
        app.hooks.add("around_perform", self.around_perform)

    def uninstrument(self) -> None:
        """Stop tracing (the hooks stay registered and do nothing); :func:`instrument` turns it back on."""
        self.enabled = False
        with self._lock:
            pending, self._pending = list(self._pending.values()), OrderedDict()
        for span in pending:
            span.end()

    def before_enqueue(self, job: Job[Any]) -> None:
        """Start the producer span and put its trace context into the job's meta."""
        if not self.enabled:
            return
        queue = str(job.options.get("queue") or job.queue)
        span = self.tracer.start_span(
            f"send {queue}",
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": SYSTEM,
                "messaging.destination.name": queue,
                "messaging.message.id": job.id,
                "messaging.operation.type": "send",
                "messaging.operation.name": "send",
                "resq.task": job.task,
            },
        )
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        job.options["meta"] = {**(job.options.get("meta") or {}), META_KEY: carrier}
        stale: list[Span] = []
        with self._lock:
            if job.id in self._pending:
                stale.append(self._pending.pop(job.id))
            self._pending[job.id] = span
            while len(self._pending) > MAX_PENDING:
                stale.append(self._pending.popitem(last=False)[1])
        for old in stale:
            old.end()

    def after_enqueue(self, job: Job[Any]) -> None:
        """End the producer span of a job now stored (a job queued again has none)."""
        with self._lock:
            span = self._pending.pop(job.id, None)
        if span is not None:
            span.end()

    @contextlib.contextmanager
    def around_perform(self, job: Job[Any]) -> Iterator[None]:
        """A consumer span around the attempt, a child of the trace context in the job's meta."""
        if not self.enabled:
            yield
            return
        meta = job.options.get("meta") or {}
        carrier = meta.get(META_KEY)
        parent = propagate.extract(carrier) if isinstance(carrier, dict) else None
        queue = str(job.queue)
        with self.tracer.start_as_current_span(
            f"process {queue}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": SYSTEM,
                "messaging.destination.name": queue,
                "messaging.message.id": job.id,
                "messaging.operation.type": "process",
                "messaging.operation.name": "process",
                "resq.task": job.task,
                "resq.attempt": job.attempt,
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield
            except BaseException as exc:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
                span.set_attribute("error.type", type(exc).__qualname__)
                raise


def instrument(app: Resq, tracer_provider: trace.TracerProvider | None = None) -> Instrumentor:
    """Trace ``app``'s jobs (once per app: a second call turns tracing back on and returns the same
    :class:`Instrumentor`). Call it where the app is defined, so producers and workers both trace.

    Args:
        app: the resq app.
        tracer_provider: where spans go (default: the global tracer provider).
    """
    found = _instrumented.get(app)
    if found is None:
        found = _instrumented[app] = Instrumentor(app, tracer_provider)
    else:
        if tracer_provider is not None:
            found.tracer = trace.get_tracer(__name__, tracer_provider=tracer_provider)
        found.enabled = True
    return found


def uninstrument(app: Resq) -> None:
    """Stop tracing ``app``'s jobs (no-op if it is not instrumented)."""
    found = _instrumented.get(app)
    if found is not None:
        found.uninstrument()
