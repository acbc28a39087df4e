"""Knative Functions, current: the repo root as func builds it, served by func-python.

The venv holds func-python 0.8.x (with cloudevents 2.x) and this repository installed the
way func's scaffolding installs it (``function @ <root>``); the server is the scaffolding's
``from function import new`` + ``func_python.cloudevent.serve``, on LISTEN_ADDRESS.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Callable, Dict, List

import pytest

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

REQUIREMENTS = ["func-python>=0.8,<0.9", "kubernetes>=24", "PyYAML>=5.4", "setuptools>=61"]
SCAFFOLD = """
import logging
from func_python.cloudevent import serve
logging.basicConfig(level=logging.INFO)
from function import new as handler
serve(handler)
"""
# The middleware answers every non-CloudEvent (and undecodable) request itself, with 400.
EXPECT = Expectations(kinds=frozenset({CLOUDEVENT}))
Start = Callable[..., runtimes.Server]


@pytest.fixture(scope="module")
def knative_venv() -> Path:
    venv = runtimes.venv("knative-func", "3.12", REQUIREMENTS)
    # Install this checkout as func's scaffolding does, so the packaging itself is tested.
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                    "--no-deps", "--no-build-isolation", "--force-reinstall",
                    str(runtimes.REPO)], check=True, capture_output=True)
    return venv


@pytest.fixture
def serve(knative_venv: Path, tmp_path: Path, free_port: Callable[[], int],
          servers: List[runtimes.Server]) -> Start:

    def start(env: Dict[str, str]) -> runtimes.Server:
        port = free_port()
        main = tmp_path / "service_main.py"
        main.write_text(SCAFFOLD)
        server = runtimes.start(
            "knative-func", [str(knative_venv / "bin" / "python"), str(main)],
            tmp_path / f"run-{len(servers)}", port, probe="/health/liveness",
            # No PYTHONPATH: `function` must come from the installed distribution.
            env={"LISTEN_ADDRESS": f"127.0.0.1:{port}", "PYTHONPATH": "", **env},
            cwd=tmp_path)
        servers.append(server)
        return server

    return start


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
