"""The Prometheus endpoint: ``resq.metrics.serve`` and ``resq worker --metrics-port``."""

from __future__ import annotations

import math
import re
import sys
import urllib.request
from types import ModuleType

import pytest

import resq
from resq.ops.metrics import serve
from tests.conftest import RunWorker
from tests.helpers import burst, wait_for

APP = "tests.apps.obs:app"
LINE = re.compile(r"^(?P<name>[a-z_]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        match = LINE.match(line)
        if match:
            labels = frozenset(re.findall(r'(\w+)="([^"]*)"', match["labels"] or ""))
            samples[(match["name"], labels)] = float(match["value"])
    return samples


def get(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


@pytest.mark.cluster
def test_metrics_after_some_jobs(obs: ModuleType, run_worker: RunWorker) -> None:
    obs.add.delay(1, 2)
    obs.add.delay(3, 4)
    obs.fail.delay()
    burst(run_worker, APP)
    obs.add.delay(5, 6)
    obs.add.enqueue_in(3600, 7, 8)
    obs.add.apply_async((9, 9), queue="unserved")  # waits, and nothing of its queue starts: never drains
    server = serve(obs.app, 0, "127.0.0.1")
    try:
        samples = scrape(server.port)
    finally:
        server.shutdown()
    assert get(samples, "resq_redis_up") == 1
    assert get(samples, "resq_jobs_processed_total", task="obs.add", queue="default") == 2
    assert get(samples, "resq_jobs_processed_total", task="obs.fail", queue="default") == 1
    assert get(samples, "resq_jobs_failed_total", task="obs.fail", queue="default") == 1
    assert get(samples, "resq_jobs_dead_total", task="obs.fail", queue="default") == 1
    assert ("resq_jobs_failed_total", frozenset({("task", "obs.add"), ("queue", "default")})) not in samples
    assert get(samples, "resq_job_duration_seconds_count", task="obs.add") == 2
    assert get(samples, "resq_job_duration_seconds_bucket", task="obs.add", le="+Inf") == 2
    buckets = sorted(
        (float(dict(labels)["le"]), value)
        for (name, labels), value in samples.items()
        if name == "resq_job_duration_seconds_bucket" and dict(labels)["task"] == "obs.add"
    )
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)  # cumulative
    assert get(samples, "resq_queue_depth", queue="default") == 1
    assert get(samples, "resq_queue_running", queue="default") == 0
    assert get(samples, "resq_queue_oldest_age_seconds", queue="default") >= 0
    rate = get(samples, "resq_queue_drain_rate", queue="default")  # the three jobs the burst started
    assert 0 < rate <= 3 / 60
    assert get(samples, "resq_queue_drain_eta_seconds", queue="default") == pytest.approx(1 / rate, rel=0.05)
    assert get(samples, "resq_queue_drain_eta_seconds", queue="unserved") == math.inf
    assert get(samples, "resq_queue_drain_rate", queue="unserved") == 0
    assert get(samples, "resq_scheduled_jobs", queue="default") == 1
    assert get(samples, "resq_dead_jobs", queue="default") == 1
    assert get(samples, "resq_workers_live") == 0


def test_worker_metrics_port(obs: ModuleType, run_worker: RunWorker, free_port: int) -> None:
    obs.add.delay(1, 2)
    proc = run_worker(APP, "--metrics-port", str(free_port), "-c", "2")
    samples = wait_for(
        lambda: (s := scrape(free_port)) and get(s, "resq_workers_live") == 2 and s,
        message="metrics with two live workers",
    )
    wait_for(
        lambda: get(scrape(free_port), "resq_jobs_processed_total", task="obs.add", queue="default") == 1,
        message="the job counted",
    )
    assert get(samples, "resq_redis_up") == 1
    assert proc.poll() is None


def test_redis_down_is_reported_not_raised(free_port: int) -> None:
    app = resq.Resq("redis://127.0.0.1:1/0", broker_retry_s=0.1)
    server = serve(app, 0, "127.0.0.1")
    try:
        assert get(scrape(server.port), "resq_redis_up") == 0
    finally:
        server.shutdown()


def test_missing_prometheus_client_is_a_config_error(obs: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # as if the extra were not installed
    with pytest.raises(resq.ConfigError, match=r"pip install 'resq\[metrics\]'"):
        serve(obs.app, 0, "127.0.0.1")
