"""Prometheus metrics of one server, in a registry of its own (``prometheus_client``; no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    """Requests, errors by status, queue depth, batch sizes, latency and tokens.

    Names (all prefixed ``aerith_``): ``requests_total{endpoint,status}``,
    ``request_errors_total{status}``, ``request_latency_seconds{endpoint}``,
    ``queue_depth``, ``requests_running``, ``batch_size``, ``batch_seconds``,
    ``generated_tokens_total``, ``model_ready``.
    """

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("aerith_requests", "HTTP requests answered", ["endpoint", "status"], registry=r)
        self.errors = Counter("aerith_request_errors", "HTTP requests answered with a 4xx or 5xx status", ["status"], registry=r)
        self.latency = Histogram(
            "aerith_request_latency_seconds", "Time from request to the end of its response", ["endpoint"],
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.queue_depth = Gauge("aerith_queue_depth", "Requests waiting for a batch", registry=r)
        self.running = Gauge("aerith_requests_running", "Requests in the batch being generated", registry=r)
        self.batch_size = Histogram("aerith_batch_size", "Requests generated together", buckets=BATCH_BUCKETS, registry=r)
        self.batch_seconds = Histogram(
            "aerith_batch_seconds", "Time to generate one batch", buckets=LATENCY_BUCKETS, registry=r
        )
        self.tokens = Counter("aerith_generated_tokens", "Tokens generated", registry=r)
        self.ready = Gauge("aerith_model_ready", "1 once the model is loaded and the queue runs", registry=r)

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint=endpoint, status=str(status)).inc()
        if status >= 400:
            self.errors.labels(status=str(status)).inc()
        self.latency.labels(endpoint=endpoint).observe(seconds)

    def observe_batch(self, size: int, seconds: float, tokens: int) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)
        self.tokens.inc(tokens)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


__all__ = ["Metrics"]
