"""functions-framework: the http target answers GET /metrics. (The cloud_event target has
no route to spare, and a side port would be bound by gunicorn's master process while the
alerts are handled in its forked worker: not offered there.)"""

from __future__ import annotations

from tests.adapters.metrics_scrape import alert_then_scrape
from tests.adapters.test_functions_framework import Serve, python, serve  # noqa: F401


def test_get_metrics_on_the_http_target(serve: Serve) -> None:  # noqa: F811
    server = serve("http", {"FALCO_RESPONDER_CLUSTER": "off"})
    alert_then_scrape(server.url + "/", server.url + "/metrics")

