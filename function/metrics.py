"""Prometheus metrics of the function, with the maintained ``prometheus_client``.

One registry per process (not the client's global one, which runtimes may fill with their
own). What is counted: alerts by top-level outcome, actions by action and status, errors by
type, the decision's and each Kubernetes call's latency, conflicts on the shared guard
state, and the blast-radius slots left. Exposition is :func:`metrics_text` for a route of
the runtime's own server, or :func:`serve_port` for a side port where a runtime has no
route to spare. Where a runtime forks a process per request (Kubeless), set
``PROMETHEUS_MULTIPROC_DIR`` before the first import: every process then writes its counts
there and the exposition adds them up.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Callable, Iterator, Optional, Tuple

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger("function")

NAMESPACE = "falco_responder"
_DECISION_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                     0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_CALL_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                 5.0)


class _GuardCollector(Collector):
    """The rate limit as this process last saw it, read at scrape time: a gauge that is
    computed, not set, so it also counts down as slots leave the window."""

    def __init__(self) -> None:
        self.source: Optional[Callable[[], Tuple[Optional[int], Optional[int]]]] = None

    def collect(self) -> Iterator[Metric]:
        if self.source is None:
            return
        remaining, limit = self.source()
        if limit is None or remaining is None:
            return
        yield GaugeMetricFamily(f"{NAMESPACE}_rate_limit_remaining",
                                "Destructive actions the blast-radius limit still allows in "
                                "its window, as this process last saw the shared state.",
                                value=remaining)
        yield GaugeMetricFamily(f"{NAMESPACE}_rate_limit_actions",
                                "Destructive actions the blast-radius limit allows per window.",
                                value=limit)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.alerts = Counter(f"{NAMESPACE}_alerts", "Alerts answered, by top-level outcome.",
                              ["outcome"], registry=r)
        self.actions = Counter(f"{NAMESPACE}_actions", "Actions decided, by action and status.",
                               ["action", "status"], registry=r)
        self.errors = Counter(f"{NAMESPACE}_errors", "Requests answered with an error, by type.",
                              ["type"], registry=r)
        self.decision = Histogram(f"{NAMESPACE}_decision_duration_seconds",
                                  "Time from request to answer, Kubernetes calls included.",
                                  buckets=_DECISION_BUCKETS, registry=r)
        self.kube = Histogram(f"{NAMESPACE}_kubernetes_request_duration_seconds",
                              "Time of each Kubernetes API request (each attempt), by "
                              "operation.", ["operation"], buckets=_CALL_BUCKETS, registry=r)
        self.conflicts = Counter(f"{NAMESPACE}_guard_state_conflicts",
                                 "Writes to the shared guard state refused because another "
                                 "replica wrote first (each is retried).", registry=r)
        self.guards = _GuardCollector()
        r.register(self.guards)
        self._served: Optional[int] = None
        self._serve_lock = threading.Lock()

    def kube_call(self, operation: str, seconds: float) -> None:
        self.kube.labels(operation).observe(seconds)

    def exposition_registry(self) -> CollectorRegistry:
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            return self.registry
        from prometheus_client import multiprocess

        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        merged.register(self.guards)
        return merged

    def text(self) -> Tuple[str, bytes]:
        """(Content-Type, body) of a scrape."""
        return CONTENT_TYPE_LATEST, generate_latest(self.exposition_registry())

    def serve_port(self, port: int, address: str = "0.0.0.0") -> bool:
        """Serve the metrics on a side port, once per process; False when another process
        of the pod serves it already (the port is taken)."""
        with self._serve_lock:
            if self._served is not None:
                return self._served == port
            try:
                start_http_server(port, address, registry=self.exposition_registry())
            except OSError as e:
                log.info("metrics port %d not served by this process: %s", port, e)
                return False
            self._served = port
            return True


METRICS = Metrics()


def metrics_text() -> Tuple[str, bytes]:
    """What GET /metrics answers: (Content-Type, body)."""
    return METRICS.text()
