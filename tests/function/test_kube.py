"""Failures a retry could fix: bounded retries, then 503 so the sender (a Broker) retries.

The API server cannot be made to answer 429/503 or hang on demand, so two faults come from
a small local HTTP server that only injects them (it says so below); an unreachable API
server is the real thing: a closed port.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator, List, Tuple

import pytest
from kubernetes import client

from function import Engine, Settings
from function.kube import Kube, Retry
from function.policy import load_default

from .conftest import TERMINAL_SHELL
from .wire import load_json


def engine_for(host: str, retry: Retry) -> Engine:
    cfg = client.Configuration(host=host)
    cfg.retries = False
    # The guards' state in memory: these servers only inject faults, they keep no Leases.
    return Engine(load_default(), Settings(guard_state="memory"),
                  Kube(client.ApiClient(cfg), retry), "test")


def alert() -> bytes:
    doc = load_json("forwarded", TERMINAL_SHELL)
    doc["time"] = "2099-01-01T00:00:00Z"  # newer than anything the fault server returns
    return json.dumps(doc).encode()


class FaultServer:
    """Fault injection only: answers the first ``statuses`` in turn, then 404 to anything."""

    def __init__(self, statuses: List[int], hang: bool = False) -> None:
        self.statuses = list(statuses)
        self.requests: List[Tuple[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                outer.requests.append((self.command, self.path))
                if hang:
                    time.sleep(3)
                    return
                status = outer.statuses.pop(0) if outer.statuses else 404
                body = json.dumps({"kind": "Status", "code": status,
                                   "message": f"injected {status}"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_DELETE = do_POST = do_PATCH = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def faults() -> Iterator[Any]:
    servers: List[FaultServer] = []

    def make(statuses: List[int], hang: bool = False) -> FaultServer:
        servers.append(FaultServer(statuses, hang))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_api_server_is_503_after_bounded_retries() -> None:
    engine = engine_for(f"https://127.0.0.1:{closed_port()}", Retry(3, 5.0, 1.0, 0.05))
    started = time.monotonic()
    response = engine.handle_http({"Content-Type": "application/json"}, alert())
    assert time.monotonic() - started < 5.0
    assert response.status == 503
    error = response.body["error"]
    assert error["type"] == "kubernetes_unavailable"
    assert "failed after 3 attempt(s)" in error["message"]
    assert response.body["decision"]["alert"]["target"] == "default/alpine"
    (failed,) = response.body["decision"]["actions"]  # which action the retry is for
    assert (failed["action"], failed["status"]) == ("terminate", "failed")
    assert response.body["decision"]["duration_ms"] > 0


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retryable_statuses_are_retried_then_503(faults: Any, status: int) -> None:
    server = faults([status] * 10)
    response = engine_for(server.url, Retry(3, 5.0, 1.0, 0.01)).handle_http(
        {"Content-Type": "application/json"}, alert())
    assert response.status == 503
    assert len(server.requests) == 3
    assert f"{status} injected {status}" in response.body["error"]["message"]


def test_a_retry_that_succeeds_is_not_an_error(faults: Any) -> None:
    server = faults([503, 429])  # then 404: the pod is gone
    response = engine_for(server.url, Retry(3, 5.0, 1.0, 0.01)).handle_http(
        {"Content-Type": "application/json"}, alert())
    assert response.status == 200
    (action,) = response.body["actions"]
    assert (action["status"], action["reason"]) == ("done", "already gone")
    assert len(server.requests) == 3


def test_a_hanging_api_server_is_cut_off_by_the_timeout_and_the_budget(faults: Any) -> None:
    server = faults([], hang=True)
    started = time.monotonic()
    response = engine_for(server.url, Retry(3, 1.0, 0.3, 0.01)).handle_http(
        {"Content-Type": "application/json"}, alert())
    elapsed = time.monotonic() - started
    assert response.status == 503
    assert elapsed < 1.5, elapsed


def test_permanent_errors_are_not_retried_and_the_answer_says_failed(faults: Any) -> None:
    server = faults([403])
    response = engine_for(server.url, Retry(3, 5.0, 1.0, 0.01)).handle_http(
        {"Content-Type": "application/json"}, alert())
    assert response.status == 500
    assert response.body["error"]["type"] == "action_failed"
    assert response.body["error"]["message"].startswith(
        "failed: terminate on default/alpine: Kubernetes API 403")
    decision = response.body["decision"]
    assert decision["outcome"] == "failed"
    (action,) = decision["actions"]
    assert action["status"] == "failed" and "403" in action["reason"]
    assert len(server.requests) == 1


def test_a_transient_failure_does_not_start_the_dedup_window(faults: Any) -> None:
    server = faults([503, 503, 503])
    engine = engine_for(server.url, Retry(3, 5.0, 1.0, 0.01))
    first = engine.handle_http({"Content-Type": "application/json"}, alert())
    second = engine.handle_http({"Content-Type": "application/json"}, alert())
    assert first.status == 503
    assert second.status == 200 and second.body["actions"][0]["reason"] == "already gone"
