"""Knative Functions, current: the repository root built as func builds it and served by
func's own scaffolding (``tests.testbed.knative_func``: the archive's
``instanced-cloudevents`` ``service/main.py`` and ``pyproject.toml``, installed with
``pip install . --target lib``, run as the image runs it: func-python on LISTEN_ADDRESS)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, List

import pytest

from tests.testbed import knative_func
from tests.testbed.kube import Kube

from . import runtimes
from .contract import (
    CLOUDEVENT,
    TOKEN,
    Expectations,
    binary_event,
    check_contract,
    check_end_to_end,
    post,
    shell_alert,
    wire_body_for,
    wire_headers,
)

# The middleware answers every non-CloudEvent (and undecodable) request itself, with 400.
EXPECT = Expectations(kinds=frozenset({CLOUDEVENT}))
Start = Callable[..., runtimes.Server]


@pytest.fixture(scope="module")
def build_dir() -> Path:
    """``.func/build`` of this checkout, as func's host builder leaves it."""
    return knative_func.build()


@pytest.fixture
def serve(build_dir: Path, tmp_path: Path, free_port: Callable[[], int],
          servers: List[runtimes.Server]) -> Start:

    def start(env: Dict[str, str]) -> runtimes.Server:
        port = free_port()
        process = knative_func.start(tmp_path / f"run-{len(servers)}",
                                     {"FALCO_RESPONDER_CLUSTER": "off", **env},
                                     port=port, build_dir=build_dir)
        server = runtimes.Server("knative-func", f"http://127.0.0.1:{port}", process)
        servers.append(server)
        return server

    return start


def test_the_build_installs_this_checkout_through_funcs_scaffolding(build_dir: Path) -> None:
    """No copy of the function: ``function`` in lib is this repository, installed from f."""
    assert (build_dir / "f").resolve() == runtimes.REPO
    assert (build_dir / "lib" / "function" / "runtime.py").is_file()
    assert (build_dir / "lib" / "func_python").is_dir()
    assert "from function import new as handler" in (build_dir / "service" / "main.py"
                                                      ).read_text()


def test_the_contract(serve: Start) -> None:
    server = serve({})
    ran = check_contract(server.url + "/", EXPECT, token=False)
    assert "wire/cloudevents_binary.http" in ran and "sdk-structured" in ran


def test_the_contract_with_a_token(serve: Start) -> None:
    server = serve({"FALCO_RESPONDER_TOKEN": TOKEN})
    check_contract(server.url + "/", EXPECT, token=True)


def test_plain_json_is_refused_by_the_middleware(serve: Start) -> None:
    server = serve({})
    reply = post(server.url + "/", [("Content-Type", "application/json")],
                 wire_body_for("default", "alpine", "2024-04-03T11:36:27Z"))
    assert reply.status == 400


def test_the_reply_is_a_binary_cloudevent_with_the_decision(serve: Start) -> None:
    server = serve({})
    headers, body = binary_event(shell_alert())
    reply = post(server.url + "/", headers, body)
    assert reply.status == 200
    assert reply.headers["ce-type"] == "dev.falcoresponder.response.v1"
    assert reply.headers["ce-source"] == "falco-responder"
    assert reply.headers["ce-subject"] == "default/alpine"
    assert reply.json()["actions"][0]["status"] == "would"


def test_readiness_is_false_with_the_reason_on_an_invalid_policy(serve: Start,
                                                                  tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [{name: r, match: {rules: [x]}, actions: [{action: nuke}]}]")
    server = serve({"FALCO_RESPONDER_POLICY": str(bad)})
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(server.url + "/health/readiness", timeout=5)
    assert caught.value.code == 500
    assert b"unknown action 'nuke'" in caught.value.read()
    headers, body = binary_event(shell_alert())
    reply = post(server.url + "/", headers, body)
    assert reply.status == 503
    assert reply.headers["ce-type"] == "dev.falcoresponder.error.v1"


@pytest.mark.cluster
def test_end_to_end_a_shell_kills_the_pod_and_protected_pods_stay(
        serve: Start, kube: Kube, deployed_env: Dict[str, str],
        alert_time: Callable[[], str]) -> None:
    server = serve(deployed_env)
    reply = check_end_to_end(server.url + "/", wire_headers("cloudevents_binary.http"), kube,
                             alert_time, cloudevent=True)
    assert reply.headers["ce-type"] == "dev.falcoresponder.response.v1"
