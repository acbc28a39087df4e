"""Kubeless python3.8 runtime: ``adapters/kubeless`` deployed as Kubeless deploys it (the
zip from ``adapters.kubeless.bundle`` unpacked into the function folder), served by the
contract stand-in ``tests/adapters/kubeless_server/_kubeless.py`` (bottle 0.12.13 +
cherrypy 8.9.1, the handler in a forkserver child) on Python 3.8, over real HTTP."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Callable, Dict, List, Optional

import pytest

from adapters.kubeless.bundle import bundle
from tests.adapters import contract
from tests.adapters.contract import (
    JSON,
    Expectations,
    post,
    unreachable_cluster,
    wire_headers,
)
from tests.adapters.runtimes import REPO, Server, start, venv
from tests.adapters.runtimes import requirements as runtime_requirements
from tests.testbed.kube import Kube

ADAPTER = REPO / "adapters" / "kubeless"
SERVER = Path(__file__).resolve().parent / "kubeless_server" / "_kubeless.py"
# What the python3.8 runtime image installs for its server (its Dockerfile pins the first two).
RUNTIME = ["bottle==0.12.13", "cherrypy==8.9.1", "wsgi-request-logger==0.4.6",
           "prometheus_client==0.21.1"]
# The runtime parses `Content-Type: application/json` bodies itself before calling the
# function (bottle's request.json); a body that is not JSON raises there: 500, not ours.
PLAIN_JSON = Expectations(kinds=frozenset({JSON}), overrides={
    "json-invalid": (500, "the runtime's own JSON parse fails before the function runs"),
    "json-too-large": (500, "the runtime's own JSON parse fails before the function runs"),
})
KUBELESS_HEADERS = wire_headers("kubeless_direct.http")  # Falcosidekick's kubeless output
TIME = "2024-04-03T11:36:27.670410771Z"

Serve = Callable[..., Server]


def requirements() -> List[str]:
    return runtime_requirements(ADAPTER)


@pytest.fixture(scope="module")
def python() -> Path:
    return venv("kubeless", "3.8", [*RUNTIME, *requirements()]) / "bin" / "python"


@pytest.fixture(scope="module")
def function_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The runtime's /kubeless after Kubeless unpacked our zip into it."""
    root = tmp_path_factory.mktemp("kubeless")
    with zipfile.ZipFile(bundle(root / "falco-responder.zip")) as archive:
        archive.extractall(root / "kubeless")
    return root / "kubeless"


@pytest.fixture
def serve(python: Path, function_dir: Path, free_port: Callable[..., int],
          tmp_path: Path, servers: List[Server]) -> Serve:
    def make(env: Optional[Dict[str, str]] = None, module: str = "handler",
             folder: Optional[Path] = None, timeout: str = "180") -> Server:
        port = free_port()
        folder = folder or function_dir
        environment = {
            "MOD_NAME": module, "FUNC_HANDLER": "handler", "FUNC_PORT": str(port),
            "FUNC_TIMEOUT": timeout, "FUNC_RUNTIME": "python3.8",
            "FUNC_MEMORY_LIMIT": "128Mi", "KUBELESS_DIR": str(folder),
            # The image starts the server in / beside /_kubeless.py; the forkserver finds the
            # module it preloads (and so the function) through that working directory.
            # Kubeless puts only the function folder on the path, never this checkout.
            "PYTHONPATH": str(folder),
            # Per test, so one test's counts never reach another's (the default is in /tmp).
            "FALCO_RESPONDER_STATE_FILE": str(tmp_path / f"guards-{port}.json"),
            **(env or {})}
        server = start("kubeless", [str(python), str(SERVER)], tmp_path, port,
                       env=environment, cwd=SERVER.parent, probe="/healthz")
        servers.append(server)
        return server

    return make


def test_contract(serve: Serve) -> None:
    server = serve()
    ran = contract.check_contract(server.url, PLAIN_JSON, token=False)
    # kubeless_direct: parsed dict; webhook_post (charset in Content-Type): raw bytes.
    assert {"wire/kubeless_direct.http", "wire/webhook_post.http", "json-missing-rule"} <= set(
        ran)


def test_contract_with_token(serve: Serve) -> None:
    server = serve({"FALCO_RESPONDER_TOKEN": contract.TOKEN})
    assert contract.check_contract(server.url, PLAIN_JSON, token=True)


def test_health_and_metrics(serve: Serve) -> None:
    import urllib.request

    server = serve()
    with urllib.request.urlopen(server.url + "/healthz", timeout=5) as reply:
        assert reply.read() == b"OK"
    post(server.url, KUBELESS_HEADERS, contract.wire_body_for("default", "alpine", TIME))
    with urllib.request.urlopen(server.url + "/metrics", timeout=5) as reply:
        assert b'function_calls_total{method="POST"}' in reply.read()


def test_the_engine_is_built_before_requests_not_per_request(serve: Serve) -> None:
    """Once in the server, once in the forkserver every request's child is forked from."""
    server = serve()
    for _ in range(3):
        reply = post(server.url, KUBELESS_HEADERS,
                     contract.wire_body_for("default", "alpine", TIME))
        assert reply.status == 200
    assert server.log().count('"message": "started"') == 2, server.log()


def test_a_function_slower_than_func_timeout_gets_408(serve: Serve, tmp_path: Path) -> None:
    folder = tmp_path / "slow"
    folder.mkdir()
    (folder / "slow.py").write_text(
        "import time\n\ndef handler(event, context):\n    time.sleep(30)\n")
    server = serve(module="slow", folder=folder, timeout="1")
    reply = post(server.url, KUBELESS_HEADERS, b"{}")
    assert reply.status == 408, reply.body


def test_503_passes_through_when_kubernetes_is_unreachable(
        serve: Serve, tmp_path: Path, free_port: Callable[..., int]) -> None:
    server = serve(unreachable_cluster(tmp_path, free_port()))
    reply = post(server.url, KUBELESS_HEADERS, contract.wire_body_for("default", "alpine", TIME))
    assert reply.status == 503, (reply.body, server.log())
    assert reply.json()["error"]["type"] == "kubernetes_unavailable"


@pytest.mark.cluster
def test_falcosidekick_kubeless_output_kills_the_pod_end_to_end(
        serve: Serve, kube: Kube, deployed_env: Dict[str, str],
        alert_time: Callable[[], str]) -> None:
    server = serve(deployed_env)
    contract.check_end_to_end(server.url, KUBELESS_HEADERS, kube, alert_time)


LIMIT_ONE = """
guards: {rate_limit: {actions: 1, per_seconds: 60}}
rules: [{name: r, match: {rules: ["Terminal shell in container"]}, actions: [{action: terminate}]}]
"""


@pytest.mark.cluster
def test_dedup_and_the_blast_radius_hold_across_the_per_request_children(
        serve: Serve, kube: Kube, deployed_env: Dict[str, str],
        alert_time: Callable[[], str], tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(LIMIT_ONE)
    server = serve({**deployed_env, "FALCO_RESPONDER_POLICY": str(policy)})
    for name in ("first", "second"):
        kube.create_standalone_pod(name)

    def act(pod: str) -> Dict[str, str]:
        reply = post(server.url, KUBELESS_HEADERS,
                     contract.wire_body_for(kube.namespace, pod, alert_time()))
        assert reply.status == 200, (reply.body, server.log())
        (action,) = reply.json()["actions"]
        return dict(action)

    assert act("first")["reason"] == "pod deleted"
    # A fresh child process: without the shared counts this would be "already gone".
    assert act("first")["reason"] == "duplicate: already acted within the last 60s"
    assert act("second")["reason"] == "rate limit: 1 destructive actions per 60s reached"
    assert kube.read_pod("second") is not None


def test_the_function_manifest_carries_the_deployed_zip(tmp_path: Path) -> None:
    import base64
    import hashlib

    import yaml

    from adapters.kubeless.bundle import manifest

    archive = bundle(tmp_path / "f.zip")
    spec = yaml.safe_load(manifest(archive, tmp_path / "function.yaml").read_text())["spec"]
    content = base64.b64decode(spec["function"])
    assert content == archive.read_bytes()
    assert spec["checksum"] == "sha256:" + hashlib.sha256(content).hexdigest()
    assert (spec["runtime"], spec["handler"], spec["function-content-type"]) == (
        "python3.8", "handler.handler", "base64+zip")
    assert requirements() == [line for line in spec["deps"].splitlines()
                              if line and not line.startswith("#")]
    assert bundle(tmp_path / "again.zip").read_bytes() == content  # reproducible
