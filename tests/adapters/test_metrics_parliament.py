"""Knative legacy (parliament): it routes only POST / and its own health checks, so the
metrics are on the side port FALCO_RESPONDER_METRICS_PORT."""

from __future__ import annotations

from typing import Callable

from tests.adapters.metrics_scrape import alert_then_scrape
from tests.adapters.test_parliament import Serve, python, serve  # noqa: F401


def test_metrics_on_the_side_port(serve: Serve,  # noqa: F811
                                  free_port: Callable[..., int]) -> None:
    port = free_port()
    server = serve({"FALCO_RESPONDER_CLUSTER": "off",
                    "FALCO_RESPONDER_METRICS_PORT": str(port)})
    alert_then_scrape(server.url + "/", f"http://127.0.0.1:{port}/metrics")
