"""A traced app for ``tests/contrib/test_otel.py``: a worker subprocess (``resq worker -A
tests.apps.otelapp:app``) exports its spans, one JSON object a line, to the file named by
``RESQ_TEST_SPANS_FILE``; the test process instruments the same app with its own tracer provider."""

from __future__ import annotations

import os

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

from resq import Resq
from resq.contrib.otel import instrument

SPANS_FILE_ENV = "RESQ_TEST_SPANS_FILE"

app = Resq()


@app.task(name="otelapp.double")
def double(n: int) -> int:
    return n * 2


if os.environ.get(SPANS_FILE_ENV):  # the worker: its spans go to the file
    _provider = TracerProvider()
    _out = open(os.environ[SPANS_FILE_ENV], "a", buffering=1)  # noqa: SIM115 (open for the process's life)
    _provider.add_span_processor(
        SimpleSpanProcessor(ConsoleSpanExporter(out=_out, formatter=lambda span: span.to_json(indent=None) + "\n"))
    )
    instrument(app, tracer_provider=_provider)
