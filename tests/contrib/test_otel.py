"""resq.contrib.otel with the SDK's in-memory exporter: a request span, a job enqueued inside it, the job
performed by resq's consumer (in this process, one step at a time) and by a real ``resq worker``
subprocess (its spans exported to a file): the worker's span is a child of the producer's, itself a
child of the request's, all in one trace."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from resq import JobStatus, Resq
from resq.contrib.otel import META_KEY, instrument, uninstrument
from resq.worker.consumer import Consumer
from tests.apps import otelapp
from tests.helpers import burst

QUEUES = ["default", "mail"]


@pytest.fixture
def traced(redis_url: str) -> Iterator[tuple[Resq, TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = Resq(redis_url)

    @app.task(name="send_mail", queue="mail")
    def send_mail(to: str) -> str:
        return f"sent to {to}"

    @app.task(name="explode")
    def explode() -> None:
        raise ValueError("boom")

    @app.on("before_perform")
    def seen(job: Any) -> None:
        app.seen_meta = job.options.get("meta")  # type: ignore[attr-defined]

    instrument(app, tracer_provider=provider)
    app.broker.queues.ensure_groups(QUEUES)
    app.broker.workers.register("otel-consumer", {"host": "test", "pid": "0", "queues": ",".join(QUEUES)})
    yield app, provider, exporter
    app.broker.close()


def step(app: Resq) -> None:
    report = Consumer(app, "otel-consumer", QUEUES, prefetch=1).step()
    assert report.performed == 1, report


def by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {span.name: span for span in exporter.get_finished_spans()}


def test_the_consumer_span_is_a_child_of_the_producer_span_of_the_request(
    traced: tuple[Resq, TracerProvider, InMemorySpanExporter],
) -> None:
    app, provider, exporter = traced
    with provider.get_tracer("test").start_as_current_span("request") as request:
        job = app.tasks["send_mail"].delay("ada@example.com")
    step(app)
    assert job.result(timeout=0) == "sent to ada@example.com"
    spans = by_name(exporter)
    send, process = spans["send mail"], spans["process mail"]
    ctx = request.get_span_context()
    assert {send.context.trace_id, process.context.trace_id} == {ctx.trace_id}
    assert send.parent is not None and send.parent.span_id == ctx.span_id
    assert process.parent is not None and process.parent.span_id == send.context.span_id
    assert (send.kind, process.kind) == (SpanKind.PRODUCER, SpanKind.CONSUMER)
    assert dict(send.attributes or {}) == {
        "messaging.system": "resq",
        "messaging.destination.name": "mail",
        "messaging.message.id": job.id,
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "resq.task": "send_mail",
    }
    assert dict(process.attributes or {}) == {
        "messaging.system": "resq",
        "messaging.destination.name": "mail",
        "messaging.message.id": job.id,
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "resq.task": "send_mail",
        "resq.attempt": 1,
    }
    assert process.status.status_code == StatusCode.UNSET
    assert set(app.seen_meta[META_KEY]) >= {"traceparent"}  # type: ignore[attr-defined]


def test_a_failing_attempt_has_an_error_status_and_the_exception(
    traced: tuple[Resq, TracerProvider, InMemorySpanExporter],
) -> None:
    app, _, exporter = traced
    job = app.tasks["explode"].delay()
    step(app)
    assert job.status() == JobStatus.DEAD
    process = by_name(exporter)["process default"]
    assert process.status.status_code == StatusCode.ERROR
    assert "ValueError: boom" in (process.status.description or "")
    assert [event.name for event in process.events] == ["exception"]
    assert (process.attributes or {})["error.type"] == "ValueError"


def test_a_job_without_trace_context_starts_its_own_trace_and_uninstrument_stops_spans(
    traced: tuple[Resq, TracerProvider, InMemorySpanExporter],
) -> None:
    app, _, exporter = traced
    uninstrument(app)
    app.tasks["send_mail"].delay("x@example.com")
    instrument(app)
    step(app)
    spans = exporter.get_finished_spans()
    assert [span.name for span in spans] == ["process mail"]
    assert spans[0].parent is None


def test_a_resq_worker_span_is_a_child_of_the_request_s_producer_span(
    redis_url: str, run_worker: Any, tmp_path: Path
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    otelapp.app.reconfigure(url=redis_url)
    instrument(otelapp.app, tracer_provider=provider)
    try:
        with provider.get_tracer("test").start_as_current_span("request") as request:
            job = otelapp.double.delay(21)
        spans_file = tmp_path / "spans.jsonl"
        burst(run_worker, "tests.apps.otelapp:app", env={otelapp.SPANS_FILE_ENV: str(spans_file)})
        assert job.result(timeout=5) == 42
    finally:
        uninstrument(otelapp.app)
    send = by_name(exporter)["send default"]
    worker_spans = [json.loads(line) for line in spans_file.read_text().splitlines()]
    (process,) = [span for span in worker_spans if span["name"] == "process default"]
    assert process["kind"] == "SpanKind.CONSUMER"
    assert process["context"]["trace_id"] == f"0x{request.get_span_context().trace_id:032x}"
    assert process["parent_id"] == f"0x{send.context.span_id:016x}"
    assert process["attributes"]["messaging.message.id"] == job.id
