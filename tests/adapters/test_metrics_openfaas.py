"""OpenFaaS: the handler answers GET /metrics itself (the template routes every path)."""

from __future__ import annotations

from tests.adapters.metrics_scrape import alert_then_scrape
from tests.adapters.test_openfaas import Serve, app_dir, python, serve  # noqa: F401


def test_get_metrics_on_the_function_route(serve: Serve) -> None:  # noqa: F811
    server = serve({"FALCO_RESPONDER_CLUSTER": "off"})
    alert_then_scrape(server.url + "/", server.url + "/metrics")
