"""Prometheus metrics of the server, in a registry of its own (one per app).

Request counts by endpoint and status and a latency histogram come from a small ASGI
middleware; predictions by version and class from the hot path; the serving versions, load
failures and the inference-log queue are read from the holder and the log at scrape time, so
they cost nothing per request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mlops_assets.serving.log_writer import InferenceLog
from mlops_assets.serving.model_holder import ModelHolder

ENDPOINTS = frozenset(
    {
        "/predict",
        "/invocations",
        "/feedback",
        "/health",
        "/ready",
        "/model",
        "/metrics",
        "/admin/reload",
        "/docs",
        "/openapi.json",
    }
)
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)


class _StateCollector(Collector):
    def __init__(self, holder: ModelHolder, log: Callable[[], InferenceLog | None]) -> None:
        self.holder = holder
        self.log = log

    def collect(self) -> Iterator[Metric]:
        state = self.holder.state
        version = GaugeMetricFamily(
            "mlops_serving_model_version", "Registry version serving, by role.", labels=["role"]
        )
        loaded = GaugeMetricFamily(
            "mlops_serving_model_loaded_timestamp_seconds",
            "When the serving version was loaded.",
            labels=["role"],
        )
        for role in ("primary", "canary"):
            model = getattr(state, role)
            if model is not None:
                version.add_metric([role], model.version)
                loaded.add_metric([role], model.loaded_at.timestamp())
        yield version
        yield loaded
        yield GaugeMetricFamily(
            "mlops_serving_ready", "1 when a model is loaded.", value=int(state.primary is not None)
        )
        yield GaugeMetricFamily(
            "mlops_serving_canary_fraction",
            "Share of requests for the canary.",
            value=state.canary_fraction if state.canary is not None else 0.0,
        )
        yield CounterMetricFamily(
            "mlops_serving_model_load_failures",
            "Versions that failed to load or warm since start.",
            value=self.holder.failure_count,
        )
        log = self.log()
        if log is None:
            return
        stats = log.stats()
        yield GaugeMetricFamily(
            "mlops_serving_log_queue_depth",
            "Inference-log records not yet in Delta.",
            value=stats.backlog_records,
        )
        yield GaugeMetricFamily(
            "mlops_serving_log_backlog_bytes", "Bytes not yet in Delta.", value=stats.backlog_bytes
        )
        yield GaugeMetricFamily(
            "mlops_serving_log_saturated", "1 while requests get 503.", value=int(stats.saturated)
        )
        for name, help_text, value in (
            ("log_fsyncs", "Write-ahead-log group flushes.", stats.fsyncs),
            ("log_durable_records", "Records made durable.", stats.durable_records),
            ("log_delta_commits", "Delta commits of the log.", stats.delta_commits),
            ("log_delta_failures", "Failed Delta commit attempts.", stats.delta_failures),
        ):
            yield CounterMetricFamily(f"mlops_serving_{name}", help_text, value=value)


class ServingMetrics:
    """The server's metrics and their registry."""

    def __init__(self, holder: ModelHolder, log: Callable[[], InferenceLog | None]) -> None:
        """Create the metrics in a fresh registry."""
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mlops_serving_requests",
            "HTTP requests by endpoint and status.",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mlops_serving_request_seconds",
            "Request latency inside the server, by endpoint.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "mlops_serving_predictions",
            "Rows scored, by model version and predicted class.",
            ["version", "label"],
            registry=self.registry,
        )
        self.registry.register(_StateCollector(holder, log))
        self._children: dict[tuple, tuple] = {}
        self._by_version: dict[int, tuple] = {}

    def observe_request(self, path: str, status: int, seconds: float) -> None:
        """Count one request and record its latency."""
        key = (path if path in ENDPOINTS else "other", status)
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(*key), self.latency.labels(key[0]))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def count_predictions(self, version: int, positives: int, rows: int) -> None:
        """Count scored rows by class."""
        children = self._by_version.get(version)
        if children is None:
            children = self._by_version[version] = (
                self.predictions.labels(str(version), "0"),
                self.predictions.labels(str(version), "1"),
            )
        if positives:
            children[1].inc(positives)
        if rows - positives:
            children[0].inc(rows - positives)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI middleware: status and latency of every HTTP request."""

    def __init__(self, app, metrics: ServingMetrics) -> None:
        """Wrap ``app``."""
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        """Time the request and record its status."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.observe_request(scope["path"], status, time.perf_counter() - started)
