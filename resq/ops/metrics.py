"""Prometheus metrics, read from Redis at scrape time (``resq worker --metrics-port P``).

Every number comes from what the workers already keep in Redis (counters by task and queue, the
duration histogram, queues, the workers registry), so any one process can serve the metrics of the
whole namespace and nothing is lost when a worker restarts.

Metrics:

- ``resq_jobs_processed_total``, ``resq_jobs_failed_total``, ``resq_jobs_retried_total``,
  ``resq_jobs_dead_total`` (counters; labels ``task``, ``queue``);
- ``resq_job_duration_seconds`` (histogram; label ``task``);
- ``resq_queue_depth``, ``resq_queue_running``, ``resq_queue_oldest_age_seconds``,
  ``resq_queue_drain_rate``, ``resq_queue_drain_eta_seconds``, ``resq_scheduled_jobs``,
  ``resq_dead_jobs`` (gauges; label ``queue``): the depth, the oldest job's age and the time to drain
  are the signals an autoscaler scales workers on (``docs/scaling.md``);
- ``resq_workers_live`` (gauge) and ``resq_redis_up`` (1 when Redis answered the scrape).

Needs the optional extra: ``pip install 'resq[metrics]'``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from resq.app import Resq
from resq.broker import DURATION_BUCKETS_MS, Broker
from resq.errors import ConfigError, ResqError
from resq.log import get_logger
from resq.ops.inspect import Inspector

__all__ = ["MetricsServer", "ResqCollector", "serve"]

log = get_logger("resq.metrics")

#: Counters exported as ``resq_jobs_<name>_total``.
EXPORTED_COUNTERS = ("processed", "failed", "retried", "dead")
#: What a scrape reports as ``resq_redis_up 0`` instead of failing.
_SCRAPE_ERRORS: tuple[type[Exception], ...] = (ResqError,)


def _prometheus() -> Any:
    try:
        import prometheus_client
        import prometheus_client.core
    except ImportError as exc:
        raise ConfigError("metrics need the prometheus-client package: pip install 'resq[metrics]'") from exc
    return prometheus_client


class ResqCollector:
    """A Prometheus collector that reads an app's Redis on each scrape.

    Args:
        app: the app whose namespace is measured.
    """

    def __init__(self, app: Resq) -> None:
        # A broker of its own: scrapes run on the server's thread, apart from the worker's connections.
        self.inspector = Inspector(app, Broker(app.settings))

    def describe(self) -> list[Any]:
        """Nothing up front: the label values are only known at scrape time."""
        return []

    def collect(self) -> Iterator[Any]:
        """Yield every metric family, read from Redis now."""
        core = _prometheus().core
        up = core.GaugeMetricFamily("resq_redis_up", "1 when Redis answered this scrape, else 0.")
        try:
            families = [*self._counters(core), *self._durations(core), *self._queues(core), self._workers(core)]
        except _SCRAPE_ERRORS as exc:
            log.warning("metrics_scrape_failed", error=f"{type(exc).__name__}: {exc}")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _counters(self, core: Any) -> list[Any]:
        families = {
            name: core.CounterMetricFamily(
                f"resq_jobs_{name}", f"Jobs {name}, by task and queue.", labels=["task", "queue"]
            )
            for name in EXPORTED_COUNTERS
        }
        for (task, queue, name), value in sorted(self.inspector.task_counters().items()):
            if name in families:
                families[name].add_metric([task, queue], value)
        return list(families.values())

    def _durations(self, core: Any) -> list[Any]:
        family = core.HistogramMetricFamily(
            "resq_job_duration_seconds", "Duration of successful and failed attempts, by task.", labels=["task"]
        )
        for task, counts in sorted(self.inspector.durations().items()):
            family.add_metric([task], cumulative_buckets(counts), sum_value=counts.get("sum_ms", 0) / 1000)
        return [family]

    def _queues(self, core: Any) -> list[Any]:
        gauges = {
            "depth": core.GaugeMetricFamily("resq_queue_depth", "Jobs waiting in the queue.", labels=["queue"]),
            "running": core.GaugeMetricFamily("resq_queue_running", "Jobs of the queue being run.", labels=["queue"]),
            "age": core.GaugeMetricFamily(
                "resq_queue_oldest_age_seconds",
                "Seconds the oldest waiting job has waited (0 when none).",
                labels=["queue"],
            ),
            "scheduled": core.GaugeMetricFamily(
                "resq_scheduled_jobs", "Delayed jobs and retries waiting for their time.", labels=["queue"]
            ),
            "dead": core.GaugeMetricFamily("resq_dead_jobs", "Jobs in the dead set.", labels=["queue"]),
            "rate": core.GaugeMetricFamily(
                "resq_queue_drain_rate",
                "Jobs of the queue started per second, over the last minutes.",
                labels=["queue"],
            ),
            "eta": core.GaugeMetricFamily(
                "resq_queue_drain_eta_seconds",
                "Seconds to drain the waiting jobs at the drain rate (+Inf when jobs wait and none start).",
                labels=["queue"],
            ),
        }
        for q in self.inspector.queues():
            gauges["depth"].add_metric([q.name], q.waiting)
            gauges["running"].add_metric([q.name], q.running)
            gauges["age"].add_metric([q.name], q.oldest_age_s or 0.0)
            gauges["scheduled"].add_metric([q.name], q.scheduled)
            gauges["dead"].add_metric([q.name], q.dead)
            gauges["rate"].add_metric([q.name], q.drain_per_s)
            gauges["eta"].add_metric([q.name], math.inf if q.eta_s is None else q.eta_s)
        return list(gauges.values())

    def _workers(self, core: Any) -> Any:
        family = core.GaugeMetricFamily("resq_workers_live", "Worker processes with a fresh heartbeat.")
        family.add_metric([], self.inspector.live_worker_count())
        return family


def cumulative_buckets(counts: dict[str, int]) -> list[tuple[str, float]]:
    """Turn resq's per-bucket counts (bounds in ms) into Prometheus buckets (cumulative, in seconds)."""
    buckets: list[tuple[str, float]] = []
    running = 0
    for bound in DURATION_BUCKETS_MS:
        running += counts.get(str(bound), 0)
        buckets.append((_seconds_label(bound), running))
    running += counts.get("+Inf", 0)
    buckets.append(("+Inf", max(running, counts.get("count", 0))))
    return buckets


def _seconds_label(bound_ms: int) -> str:
    return repr(bound_ms / 1000)


class MetricsServer:
    """A running metrics endpoint (a daemon thread); ``shutdown()`` stops it.

    Attributes:
        host: the address it listens on.
        port: the port it listens on (the real one when 0 was asked for).
    """

    def __init__(self, httpd: Any, thread: Any) -> None:
        self._httpd = httpd
        self._thread = thread
        self.host = str(httpd.server_address[0])
        self.port = int(httpd.server_port)

    def shutdown(self) -> None:
        """Stop serving and close the socket."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def serve(app: Resq, port: int, host: str = "0.0.0.0") -> MetricsServer:
    """Serve the app's metrics as Prometheus text on ``http://host:port/metrics`` from a daemon thread.

    Args:
        app: the app whose namespace is measured.
        port: the TCP port (0 picks a free one; see ``MetricsServer.port``).
        host: the address to listen on.

    Returns:
        The running server.

    Raises:
        ConfigError: prometheus-client is not installed (``pip install 'resq[metrics]'``).
        OSError: the port cannot be bound.
    """
    prometheus = _prometheus()
    registry = prometheus.CollectorRegistry(auto_describe=False)
    registry.register(ResqCollector(app))
    httpd = make_server(host, port, prometheus.make_wsgi_app(registry), _ThreadingServer, handler_class=_QuietHandler)
    thread = threading.Thread(target=httpd.serve_forever, name="resq-metrics", daemon=True)
    thread.start()
    server = MetricsServer(httpd, thread)
    log.info("metrics_serving", host=server.host, port=server.port, path="/metrics")
    return server


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    """One thread per scrape, so a slow client does not block the others."""

    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr (one line per scrape would drown the worker's log)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass
