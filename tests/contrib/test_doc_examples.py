"""The copy-paste examples of docs/opentelemetry.md and docs/sentry.md, run as they are written: each page's
``myapp/tasks.py`` block is the module the test loads (the other integration pages are run by their own
tests: the Django example project, tests/apps/flaskapp.py, fastapiapp.py and outboxapp.py)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import sentry_sdk

from resq.worker.consumer import Consumer
from tests.conftest import REPO_ROOT
from tests.contrib.conftest import Recording

#: A driver for the OpenTelemetry page's module: the global tracer provider with an in-memory exporter (as a
#: service configures its own), a request span around ``send_mail.delay``, a burst of resq's consumer, and
#: the finished spans printed as JSON.
OTEL_DRIVER = textwrap.dedent(
    """
    import json
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)

    from myapp.tasks import app, send_mail
    from resq.worker.consumer import Consumer

    app.broker.queues.ensure_groups(["mail"])
    with trace.get_tracer("web").start_as_current_span("request"):
        send_mail.delay("ada@example.com")
    consumer = Consumer(app, "docs-example", ["mail"], burst=True)
    while not consumer.step().drained:
        pass
    print(json.dumps([
        {"name": s.name, "id": s.context.span_id, "trace": s.context.trace_id,
         "parent": s.parent.span_id if s.parent else None}
        for s in exporter.get_finished_spans()
    ]))
    """
)


def page_module(page: str) -> str:
    """The ``myapp/tasks.py`` block of a docs page."""
    text = (REPO_ROOT / "docs" / page).read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    [module] = [block for block in blocks if block.startswith("# myapp/tasks.py")]
    return module


def write_package(root: Path, module: str) -> None:
    (root / "myapp").mkdir()
    (root / "myapp" / "__init__.py").write_text("")
    (root / "myapp" / "tasks.py").write_text(module)


def test_the_opentelemetry_page_example_traces_the_worker_under_the_request(redis_url: str, tmp_path: Path) -> None:
    write_package(tmp_path, page_module("opentelemetry.md"))
    env = {**os.environ, "RESQ_REDIS_URL": redis_url, "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO_ROOT}"}
    done = subprocess.run(
        [sys.executable, "-c", OTEL_DRIVER], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    spans = {span["name"]: span for span in json.loads(done.stdout.splitlines()[-1])}
    request, send, process = spans["request"], spans["send mail"], spans["process mail"]
    assert send["parent"] == request["id"]
    assert process["parent"] == send["id"]
    assert {request["trace"], send["trace"], process["trace"]} == {request["trace"]}


def test_the_sentry_page_example_reports_the_dead_job_once(
    redis_url: str, tmp_path: Path, monkeypatch: Any, sent: Recording
) -> None:
    real_init = sentry_sdk.init
    # The page's DSN and environment, with the recording transport instead of the network.
    monkeypatch.setattr(sentry_sdk, "init", lambda *a, **kw: real_init(*a, transport=sent, **kw))
    monkeypatch.setenv("RESQ_REDIS_URL", redis_url)
    namespace: dict[str, Any] = {"__name__": "myapp.tasks"}
    exec(compile(page_module("sentry.md"), "docs/sentry.md", "exec"), namespace)
    app, charge = namespace["app"], namespace["charge"]
    charge.fn = lambda order_id: 1 / 0  # the page's body is "...": make the charge fail
    charge.options = dataclasses.replace(charge.options, backoff=lambda attempt: 0.0)  # no wait between tries
    app.broker.queues.ensure_groups(["default"])
    job = charge.delay(1047)
    consumer = Consumer(app, "docs-example", ["default"], burst=True)
    while not consumer.step().drained:
        pass
    assert job.status() == "dead"
    [event] = sent.events  # four attempts (retries=3), one report
    assert event["environment"] == "production"
    assert event["tags"]["resq.job_id"] == job.id
    assert event["tags"]["resq.attempt"] == "4"
    crumbs = [c["message"] for c in event["breadcrumbs"]["values"] if c.get("category") == "resq"]
    assert crumbs == [f"myapp.tasks.charge attempt {n} failed: ZeroDivisionError: division by zero" for n in (1, 2, 3)]
    app.broker.close()
