"""The local server of `make run`, over real HTTP, as a user starts it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, Iterator, Tuple

import pytest

from .wire import SHARED

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def server() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "function", "serve", "--port", str(port)], cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(url + "/health/readiness", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("the local server did not start")
        yield url
    finally:
        process.terminate()
        process.wait(10)


def send(url: str, body: bytes, headers: Dict[str, str]) -> Tuple[int, dict]:  # type: ignore[type-arg]
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_make_run_serves_the_default_policy_in_dry_run_without_a_cluster(server: str) -> None:
    body = (SHARED / "falco" / "terminal_shell_in_container.falco-0.37-ovh-k8s.json").read_bytes()
    status, decision = send(server + "/", body, {"Content-Type": "application/json"})
    assert status == 200
    assert decision["dry_run"] is True
    assert decision["cluster"] == "no cluster configured: no in-cluster account, no kubeconfig"
    assert decision["actions"][0]["status"] == "would"


def test_the_local_server_maps_bad_input_to_400_and_413(server: str) -> None:
    assert send(server + "/", b"{bad", {"Content-Type": "application/json"})[0] == 400
    status, body = send(server + "/", b" " * (1024 * 1024 + 1), {})
    assert status == 413 and body["error"]["type"] == "payload_too_large"


def test_the_local_server_serves_prometheus_metrics(server: str) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    body = (SHARED / "falco" / "terminal_shell_in_container.falco-0.37-ovh-k8s.json").read_bytes()
    assert send(server + "/", body, {"Content-Type": "application/json"})[0] == 200
    with urllib.request.urlopen(server + "/metrics", timeout=10) as answer:
        assert answer.headers["Content-Type"].startswith("text/plain; version=")
        text = answer.read().decode("utf-8")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples[("falco_responder_alerts_total", (("outcome", "would"),))] == 1
    assert samples[("falco_responder_actions_total",
                    (("action", "terminate"), ("status", "would")))] == 1
    assert samples[("falco_responder_decision_duration_seconds_count", ())] == 1
