"""Knative func's legacy Python runtime (parliament-functions 0.1.0): ``adapters/knative``
served by the real ``python -m parliament .`` (Flask + waitress), in a venv of its own,
over real HTTP."""

from __future__ import annotations

import shutil
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
from tests.function.wire import SHARED, parse_wire
from tests.testbed.kube import Kube
from tests.testbed.python import venv

ADAPTER = REPO / "adapters" / "knative"
BOTH = Expectations(kinds=frozenset({CLOUDEVENT, JSON}))
# parliament binds 0.0.0.0:8080, fixed. To run on a free loopback port this runs parliament's
# own __main__ (its signal handling, load() and create()) with only waitress.serve's
# host/port replaced; everything else is `python -m parliament .` as the Procfile says.
LAUNCH = """
import runpy, sys, waitress
serve, port = waitress.serve, int(sys.argv.pop(1))
waitress.serve = lambda app, **kw: serve(app, **{**kw, "host": "127.0.0.1", "port": port})
runpy.run_module("parliament", run_name="__main__", alter_sys=True)
"""

Serve = Callable[..., Server]


def requirements() -> List[str]:
    return runtime_requirements(ADAPTER)


CE_HEADERS = wire_headers("cloudevents_binary.http")


@pytest.fixture(scope="module")
def python() -> Path:
    return venv("parliament", "3.11", requirements()) / "bin" / "python"


@pytest.fixture
def serve(python: Path, free_port: Callable[..., int], tmp_path: Path,
          servers: List[Server]) -> Serve:
    def make(env: Optional[Dict[str, str]] = None, function_dir: Path = ADAPTER) -> Server:
        port = free_port()
        argv = [str(python), "-c", LAUNCH, str(port), "."]
        server = start("parliament", argv, tmp_path, port, env=env, cwd=function_dir,
                       probe="/health/readiness")
        servers.append(server)
        return server

    return make


def test_contract(serve: Serve) -> None:
    server = serve()
    ran = contract.check_contract(server.url, BOTH, token=False)
    assert {"wire/webhook_post.http", "sdk-structured", "json-too-large"} <= set(ran)


def test_contract_with_token(serve: Serve) -> None:
    server = serve({"FALCO_RESPONDER_TOKEN": contract.TOKEN})
    assert contract.check_contract(server.url, BOTH, token=True)


def test_a_cloudevent_gets_a_binary_cloudevent_reply_with_the_decision(serve: Serve) -> None:
    server = serve()
    headers, body = contract.binary_event(contract.shell_alert())
    reply = post(server.url, headers, body)
    assert reply.status == 200
    assert reply.headers["ce-type"] == "dev.falcoresponder.response.v1"
    assert reply.headers["ce-source"] == "falco-responder"
    assert reply.headers["ce-specversion"] == "1.0" and reply.headers["ce-id"]
    assert reply.headers["content-type"] == "application/json"  # binary mode: data is body
    contract.would_terminate("default/alpine")(reply.json())


def test_plain_json_gets_plain_json(serve: Serve) -> None:
    server = serve()
    request = parse_wire(SHARED / "wire" / "webhook_post.http")
    reply = post(server.url, request.headers, request.body)
    assert reply.status == 200 and "ce-type" not in reply.headers
    contract.would_terminate("default/alpine")(reply.json())


def test_the_documented_build_context_runs_without_the_checkout(
        serve: Serve, tmp_path: Path) -> None:
    """What `func build` gets (README): this directory with `function/` copied beside
    func.py, and nothing else on the path."""
    context = tmp_path / "context"
    shutil.copytree(ADAPTER, context, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "function", context / "function",
                    ignore=shutil.ignore_patterns("__pycache__"))
    server = serve({"PYTHONPATH": ""}, function_dir=context)
    headers, body = contract.binary_event(contract.shell_alert())
    reply = post(server.url, headers, body)
    assert reply.status == 200, server.log()
    contract.would_terminate("default/alpine")(reply.json())


@pytest.mark.cluster
def test_falcosidekick_cloudevent_kills_the_pod_end_to_end(
        serve: Serve, kube: Kube, deployed_env: Dict[str, str],
        alert_time: Callable[[], str]) -> None:
    server = serve(deployed_env)
    reply = contract.check_end_to_end(server.url, CE_HEADERS, kube, alert_time,
                                      cloudevent=True)
    assert reply.headers["ce-type"] == "dev.falcoresponder.response.v1"


@pytest.mark.cluster
def test_webhook_without_the_token_header_is_401_and_the_pod_stays(
        serve: Serve, kube: Kube, deployed_env: Dict[str, str],
        alert_time: Callable[[], str]) -> None:
    server = serve({**deployed_env, "FALCO_RESPONDER_TOKEN": contract.TOKEN})
    kube.create_standalone_pod("alpine")
    headers = [(k, v) for k, v in wire_headers("webhook_post.http")
               if k.lower() != "x-falco-token"]
    reply = post(server.url, headers,
                 contract.wire_body_for(kube.namespace, "alpine", alert_time()))
    assert reply.status == 401, reply.body
    assert kube.read_pod("alpine") is not None


def test_503_passes_through_when_kubernetes_is_unreachable(
        serve: Serve, tmp_path: Path, free_port: Callable[..., int]) -> None:
    server = serve(unreachable_cluster(tmp_path, free_port()))
    headers, body = contract.binary_event(contract.shell_alert())
    reply = post(server.url, headers, body)
    assert reply.status == 503 and "ce-type" not in reply.headers, reply.body
    assert reply.json()["error"]["type"] == "kubernetes_unavailable"


def test_metrics_on_the_side_port(serve: Serve, free_port: Callable[..., int]) -> None:
    """parliament routes only POST / and its own health checks: the metrics are on the side
    port FALCO_RESPONDER_METRICS_PORT."""
    port = free_port()
    server = serve({"FALCO_RESPONDER_CLUSTER": "off",
                    "FALCO_RESPONDER_METRICS_PORT": str(port)})
    alert_then_scrape(server.url + "/", f"http://127.0.0.1:{port}/metrics")
