"""Scrape a runtime's metrics as Prometheus would and parse them with prometheus_client's
own text-format parser (shared by the adapters' metrics tests)."""

from __future__ import annotations

import json
import urllib.request
from typing import Dict, Tuple

from prometheus_client.parser import text_string_to_metric_families

from tests.adapters import contract

Samples = Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert answer.headers["Content-Type"].startswith("text/plain; version=")
        text = answer.read().decode("utf-8")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def alert_then_scrape(alert_url: str, metrics_url: str) -> Samples:
    """One dry-run alert, then the scrape: it must show that alert and its action."""
    body = json.dumps(contract.shell_alert()).encode()
    reply = contract.post(alert_url, [("Content-Type", "application/json")], body)
    assert reply.status == 200, reply.body
    samples = scrape(metrics_url)
    assert samples[("falco_responder_alerts_total", (("outcome", "would"),))] == 1
    assert samples[("falco_responder_actions_total",
                    (("action", "terminate"), ("status", "would")))] == 1
    # The runtime's start-up probe was answered too, so at least one.
    assert samples[("falco_responder_decision_duration_seconds_count", ())] >= 1
    return samples
