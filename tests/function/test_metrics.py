"""Prometheus metrics: scraped as Prometheus would, parsed by prometheus_client's parser."""

from __future__ import annotations

import json
import socket
import urllib.request
from typing import Any, Callable, Dict, Iterator, Tuple

import pytest
from prometheus_client.parser import text_string_to_metric_families

from function import Engine, runtime
from function.metrics import metrics_text

Make = Callable[..., Engine]
Labels = Tuple[Tuple[str, str], ...]


def scrape(text: str) -> Dict[Tuple[str, Labels], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def current() -> Dict[Tuple[str, Labels], float]:
    content_type, body = metrics_text()
    assert content_type.startswith("text/plain; version=")
    return scrape(body.decode("utf-8"))


def delta(before: Dict[Any, float], after: Dict[Any, float], name: str,
          **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_alerts_actions_errors_and_latency_are_counted(offline_engine: Make,
                                                       shell_alert: Any) -> None:
    engine = offline_engine()
    before = current()
    body = json.dumps(shell_alert).encode()
    for _ in range(3):
        assert engine.handle_http({"Content-Type": "application/json"}, body).status == 200
    assert engine.handle_http({"Content-Type": "application/json"}, b"{bad").status == 400
    other = json.dumps(dict(shell_alert, rule="Write below etc")).encode()
    engine.handle_http({"Content-Type": "application/json"}, other)
    after = current()
    assert delta(before, after, "falco_responder_alerts_total", outcome="would") == 3
    assert delta(before, after, "falco_responder_alerts_total", outcome="no_match") == 1
    assert delta(before, after, "falco_responder_alerts_total", outcome="rejected") == 1
    assert delta(before, after, "falco_responder_actions_total", action="terminate",
                 status="would") == 3
    assert delta(before, after, "falco_responder_errors_total", type="bad_request") == 1
    assert delta(before, after, "falco_responder_decision_duration_seconds_count") == 5
    assert after[("falco_responder_rate_limit_actions", ())] == 10
    assert after[("falco_responder_rate_limit_remaining", ())] == 10


@pytest.fixture
def fresh() -> Iterator[None]:
    runtime.reset()
    yield
    runtime.reset()


def test_a_side_port_serves_them_for_runtimes_without_a_route(fresh: None,
                                                              shell_alert: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ok, _ = runtime.start({"FALCO_RESPONDER_CLUSTER": "off",
                           "FALCO_RESPONDER_METRICS_PORT": str(port)})
    assert ok
    runtime.handle_http({"Content-Type": "application/json"}, json.dumps(shell_alert).encode())
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        scraped = scrape(answer.read().decode("utf-8"))
    assert scraped[("falco_responder_alerts_total", (("outcome", "would"),))] >= 1


@pytest.mark.parametrize("raw", ["-1", "70000", "http"])
def test_a_bad_metrics_port_is_refused_by_name(fresh: None, raw: str) -> None:
    ok, why = runtime.start({"FALCO_RESPONDER_CLUSTER": "off",
                             "FALCO_RESPONDER_METRICS_PORT": raw})
    assert not ok and f"FALCO_RESPONDER_METRICS_PORT='{raw}'" in why
