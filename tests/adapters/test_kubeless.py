"""Kubeless python3.8: ``adapters/kubeless`` as Kubeless deploys it, served by the upstream
runtime ``_kubeless.py``, unmodified (``tests.testbed.kubeless_runtime``): Python 3.8 with
the image's own packages, ``/kubeless`` laid out as the controller's init containers lay it
out (the zip from ``adapters.kubeless.bundle`` unpacked, ``requirements.txt`` installed with
``pip install --prefix=/kubeless``), in a private root on a network host answering to the
function's Service names. ``test_kubeless_deploy.py`` deploys it with the real CLI and
controller."""

from __future__ import annotations

import urllib.request
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
from tests.adapters.runtimes import REPO, Server, venv
from tests.adapters.runtimes import requirements as runtime_requirements
from tests.testbed import kubeless_runtime
from tests.testbed.kube import Kube
from tests.testbed.netns import Network
from tests.testbed.pods import service_names
from tests.testbed.sidekick import Sidekick

ADAPTER = REPO / "adapters" / "kubeless"
FUNCTION, NAMESPACE = "falco-responder", "falco-responder"
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
def runtime_python() -> Path:
    """The image's Python 3.8 with what its Dockerfile.3.8 installs."""
    return venv("kubeless-runtime", "3.8", kubeless_runtime.image_requirements()) / "bin" / \
        "python"


@pytest.fixture(scope="module")
def function_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``/kubeless`` after the init containers: our zip unpacked, its deps installed."""
    root = tmp_path_factory.mktemp("kubeless")
    return kubeless_runtime.layout(root / "kubeless", bundle(root / "falco-responder.zip"),
                                   ADAPTER / "requirements.txt", kubeless_runtime.pip_python())


@pytest.fixture
def serve(runtime_python: Path, function_dir: Path, network: Callable[[], Network],
          tmp_path: Path, servers: List[Server]) -> Serve:
    def make(env: Optional[Dict[str, str]] = None, module: str = "handler",
             folder: Optional[Path] = None, timeout: str = "180",
             apiserver_port: Optional[int] = None) -> Server:
        workdir = tmp_path / f"kubeless-{len(servers)}"
        host = network().host("function", service_names(FUNCTION, NAMESPACE))
        if apiserver_port is not None:
            host.reach_loopback(apiserver_port)
        environment = {
            **kubeless_runtime.function_env(module, "handler", timeout),
            # Per test, so one test's counts never reach another's (the default is in /tmp).
            "FALCO_RESPONDER_STATE_FILE": str(workdir / "guards.json"),
            "FALCO_RESPONDER_CLUSTER": "off", **(env or {})}
        process = kubeless_runtime.start(workdir, host, folder or function_dir,
                                         runtime_python, environment)
        server = Server("kubeless", f"http://{host.ip}:{kubeless_runtime.PORT}", process, host)
        servers.append(server)
        return server

    return make


def test_the_runtime_is_the_upstream_file_on_python_3_8(runtime_python: Path,
                                                          function_dir: Path) -> None:
    import subprocess

    version = subprocess.run([str(runtime_python), "-c", "import sys, bottle, cherrypy; "
                              "print(sys.version_info[:2], bottle.__version__)"],
                             capture_output=True, text=True, check=True).stdout
    assert version.split() == ["(3,", "8)", "0.12.13"]
    assert (function_dir / "handler.py").read_bytes() == (ADAPTER / "handler.py").read_bytes()
    assert (function_dir / "function" / "runtime.py").is_file()
    assert list((function_dir / "lib").glob("python3.8/site-packages/kubernetes"))


def test_contract(serve: Serve) -> None:
    server = serve()
    with server.reach():
        ran = contract.check_contract(server.url, PLAIN_JSON, token=False)
    # kubeless_direct: parsed dict; webhook_post (charset in Content-Type): raw bytes.
    assert {"wire/kubeless_direct.http", "wire/webhook_post.http", "json-missing-rule"} <= set(
        ran)


def test_contract_with_token(serve: Serve) -> None:
    server = serve({"FALCO_RESPONDER_TOKEN": contract.TOKEN})
    with server.reach():
        assert contract.check_contract(server.url, PLAIN_JSON, token=True)


def test_health_and_metrics(serve: Serve) -> None:
    server = serve()
    with server.reach():
        with urllib.request.urlopen(server.url + "/healthz", timeout=5) as reply:
            assert reply.read() == b"OK"
        post(server.url, KUBELESS_HEADERS, contract.wire_body_for("default", "alpine", TIME))
        with urllib.request.urlopen(server.url + "/metrics", timeout=5) as reply:
            assert b'function_calls_total{method="POST"} 1.0' in reply.read()


def test_the_engine_is_built_before_requests_not_per_request(serve: Serve) -> None:
    """Once in the server, once in the forkserver every request's child is forked from."""
    server = serve()
    with server.reach():
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
    with server.reach():
        reply = post(server.url, KUBELESS_HEADERS, b"{}")
    assert reply.status == 408, reply.body


def test_503_passes_through_when_kubernetes_is_unreachable(
        serve: Serve, tmp_path: Path, free_port: Callable[..., int]) -> None:
    server = serve(unreachable_cluster(tmp_path, free_port()))
    with server.reach():
        reply = post(server.url, KUBELESS_HEADERS,
                     contract.wire_body_for("default", "alpine", TIME))
    assert reply.status == 503, (reply.body, server.log())
    assert reply.json()["error"]["type"] == "kubernetes_unavailable"


@pytest.mark.cluster
def test_end_to_end_through_the_runtime(
        serve: Serve, kube: Kube, deployed_env: Dict[str, str],
        alert_time: Callable[[], str]) -> None:
    server = serve(deployed_env, apiserver_port=contract.apiserver_port(kube))
    with server.reach():
        contract.check_end_to_end(server.url, KUBELESS_HEADERS, kube, alert_time)


@pytest.mark.cluster
def test_falcosidekick_kubeless_output_kills_the_pod_through_the_service_name(
        serve: Serve, kube: Kube, deployed_env: Dict[str, str], alert_time: Callable[[], str],
        falcosidekick: Callable[..., Sidekick]) -> None:
    server = serve(deployed_env, apiserver_port=contract.apiserver_port(kube))
    assert server.host is not None
    sidekick = falcosidekick(
        {"kubeless": {"function": FUNCTION, "namespace": NAMESPACE,
                      "port": kubeless_runtime.PORT}},
        host=server.host.network.host("falcosidekick"))
    contract.check_falcosidekick_chain(sidekick, kube, alert_time)


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
    server = serve({**deployed_env, "FALCO_RESPONDER_POLICY": str(policy)},
                   apiserver_port=contract.apiserver_port(kube))
    for name in ("first", "second"):
        kube.create_standalone_pod(name)

    def act(pod: str) -> Dict[str, str]:
        with server.reach():
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
