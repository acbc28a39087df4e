"""functions-framework 3.10.x: both targets in the real ``functions-framework`` server
(gunicorn), in a venv of their own, over real HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Dict, List, Optional

import pytest

from tests.adapters import contract
from tests.adapters.contract import (
    CLOUDEVENT,
    JSON,
    Expectations,
    post,
    unreachable_cluster,
    wire_headers,
)
from tests.adapters.metrics_scrape import alert_then_scrape
from tests.adapters.runtimes import REPO, Server, start
from tests.adapters.runtimes import requirements as runtime_requirements
from tests.testbed.kube import Kube
from tests.testbed.python import venv

ADAPTER = REPO / "adapters" / "functions_framework"


CE_HEADERS = wire_headers("cloudevents_binary.http")  # Falcosidekick's cloudevents output
# The webhook form without its token header (the 401 case needs it absent).
WEBHOOK_HEADERS = [(k, v) for k, v in wire_headers("webhook_post.http")
                   if k.lower() != "x-falco-token"]

# The cloud_event target answers 200 "OK" whatever it decided (the framework drops the
# return value); errors come back as the core's JSON through flask.abort(response).
CLOUD_EVENT = Expectations(kinds=frozenset({CLOUDEVENT}), returns_decision=False)
# The http target gets raw headers + body, so the core reads CloudEvents there too.
HTTP = Expectations(kinds=frozenset({CLOUDEVENT, JSON}))

Serve = Callable[..., Server]


def requirements() -> List[str]:
    return runtime_requirements(ADAPTER)


@pytest.fixture(scope="module")
def python() -> Path:
    return venv("functions-framework", "3.11", requirements()) / "bin" / "python"


@pytest.fixture
def serve(python: Path, free_port: Callable[..., int], tmp_path: Path,
          servers: List[Server]) -> Serve:
    def make(target: str, env: Optional[Dict[str, str]] = None) -> Server:
        port = free_port()
        signature = "cloudevent" if target == "cloud_event" else "http"
        argv = [str(python.parent / "functions-framework"), "--source",
                str(ADAPTER / "main.py"), "--target", target, "--signature-type", signature,
                "--host", "127.0.0.1", "--port", str(port)]
        server = start(f"ff-{target}", argv, tmp_path, port, env=env)
        servers.append(server)
        return server

    return make


def test_cloud_event_target_contract(serve: Serve) -> None:
    server = serve("cloud_event")
    ran = contract.check_contract(server.url, CLOUD_EVENT, token=False)
    assert "cloudevent-invalid-json" in ran, server.log()


def test_cloud_event_target_contract_with_token(serve: Serve) -> None:
    server = serve("cloud_event", {"FALCO_RESPONDER_TOKEN": contract.TOKEN})
    assert contract.check_contract(server.url, CLOUD_EVENT, token=True)


def test_http_target_contract(serve: Serve) -> None:
    server = serve("http")
    ran = contract.check_contract(server.url, HTTP, token=False)
    assert "wire/webhook_post.http" in ran


def test_http_target_contract_with_token(serve: Serve) -> None:
    server = serve("http", {"FALCO_RESPONDER_TOKEN": contract.TOKEN})
    assert contract.check_contract(server.url, HTTP, token=True)


def test_cloud_event_errors_are_the_cores_json_and_the_rest_is_the_frameworks(
        serve: Serve) -> None:
    server = serve("cloud_event")
    headers, _ = contract.binary_event(contract.shell_alert())
    reply = post(server.url, headers, b"{oops")
    assert reply.status == 400 and reply.headers["content-type"] == "application/json"
    assert reply.json()["error"]["field"] == "data"
    # Not a CloudEvent: the framework answers before our code runs (its HTML 400).
    plain = post(server.url, [("Content-Type", "application/json")],
                 json.dumps(contract.shell_alert()).encode())
    assert plain.status == 400 and b"FUNCTION_SIGNATURE_TYPE=cloudevent" in plain.body


def test_cloud_event_target_answers_503_when_kubernetes_is_unreachable(
        serve: Serve, tmp_path: Path, free_port: Callable[..., int]) -> None:
    server = serve("cloud_event", unreachable_cluster(tmp_path, free_port()))
    headers, body = contract.binary_event(contract.shell_alert())
    reply = post(server.url, headers, body)
    assert reply.status == 503, (reply.body, server.log())
    assert reply.json()["error"]["type"] == "kubernetes_unavailable"


@pytest.mark.cluster
def test_cloud_event_target_kills_the_pod_end_to_end(
        serve: Serve, kube: Kube, deployed_env: Dict[str, str],
        alert_time: Callable[[], str]) -> None:
    server = serve("cloud_event", deployed_env)
    reply = contract.check_end_to_end(server.url, CE_HEADERS, kube, alert_time,
                                      cloudevent=True, returns_decision=False)
    assert reply.body == b"OK"  # the framework ignores return values


@pytest.mark.cluster
def test_http_target_kills_the_pod_end_to_end(
        serve: Serve, kube: Kube, deployed_env: Dict[str, str],
        alert_time: Callable[[], str]) -> None:
    server = serve("http", deployed_env)
    contract.check_end_to_end(server.url, WEBHOOK_HEADERS, kube, alert_time)


@pytest.mark.cluster
def test_http_target_without_the_token_header_is_401_and_the_pod_stays(
        serve: Serve, kube: Kube, deployed_env: Dict[str, str],
        alert_time: Callable[[], str]) -> None:
    server = serve("http", {**deployed_env, "FALCO_RESPONDER_TOKEN": contract.TOKEN})
    kube.create_standalone_pod("alpine")
    reply = post(server.url, WEBHOOK_HEADERS,
                 contract.wire_body_for(kube.namespace, "alpine", alert_time()))
    assert reply.status == 401, reply.body
    assert kube.read_pod("alpine") is not None


def test_get_metrics_on_the_http_target(serve: Serve) -> None:
    """The http target answers GET /metrics. (The cloud_event target has no route to spare,
    and a side port would be bound by gunicorn's master process while the alerts are
    handled in its forked worker: not offered there.)"""
    server = serve("http", {"FALCO_RESPONDER_CLUSTER": "off"})
    alert_then_scrape(server.url + "/", server.url + "/metrics")
