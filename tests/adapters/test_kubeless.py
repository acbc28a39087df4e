"""Kubeless python3.8: ``adapters/kubeless`` deployed by the README's own
``kubeless function deploy ...`` on Kubernetes 1.21, the real function-controller making
its Deployment, and that Deployment's pod run as a kubelet would
(``tests.testbed.kubeless``): its init containers unpack the zip and ``pip install`` its
deps once per module, then each test starts the runtime container on what they made, the
upstream ``_kubeless.py`` unmodified on Python 3.8 with the image's own packages, logged in
as the pod's ServiceAccount, on a network host answering to the Service's names.

What a test changes is said where it changes it, as ``kubectl set env`` on the Deployment
would: mostly ``FALCO_RESPONDER_CLUSTER=off`` for the HTTP contract (decisions without a
cluster). ``test_kubeless_deploy.py`` checks the deploy itself and Falcosidekick's kubeless
output reaching the function through the Service's name."""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional

import pytest

from adapters.kubeless.bundle import bundle
from tests.adapters import contract
from tests.adapters.conftest import KubelessRelease
from tests.adapters.contract import (
    JSON,
    Expectations,
    post,
    wire_headers,
)
from tests.adapters.runtimes import REPO, Server
from tests.adapters.runtimes import requirements as runtime_requirements
from tests.testbed import kubeless, kubeless_runtime, procs
from tests.testbed.kube import Kube
from tests.testbed.netns import Network

pytestmark = pytest.mark.cluster
ADAPTER = REPO / "adapters" / "kubeless"
README = REPO / "README.md"
ZIP = REPO / "build" / "kubeless" / "falco-responder.zip"
# The runtime parses `Content-Type: application/json` bodies itself before calling the
# function (bottle's request.json); a body that is not JSON raises there: 500, not ours.
PLAIN_JSON = Expectations(kinds=frozenset({JSON}), overrides={
    "json-invalid": (500, "the runtime's own JSON parse fails before the function runs"),
    "json-too-large": (500, "the runtime's own JSON parse fails before the function runs"),
})
KUBELESS_HEADERS = wire_headers("kubeless_direct.http")  # Falcosidekick's kubeless output
TIME = "2024-04-03T11:36:27.670410771Z"
#: Decisions without a cluster: the HTTP contract needs none.
NO_CLUSTER = {"FALCO_RESPONDER_CLUSTER": "off"}

Serve = Callable[..., Server]


def requirements() -> List[str]:
    return runtime_requirements(ADAPTER)


@pytest.fixture(scope="module")
def runtime_python() -> Path:
    """The image's Python 3.8 with what its Dockerfile.3.8 installs."""
    return kubeless_runtime.runtime_python()


@pytest.fixture(scope="module")
def deployed(kubeless_release: KubelessRelease, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[kubeless.PreparedPod]:
    """The README's deploy; the pod of the Deployment the controller made, its init
    containers done."""
    bundle(ZIP)
    kube = Kube(kubeless_release.server, tmp_path_factory.mktemp("kubeless-admin"))
    controller = kubeless_release.controller
    with kubeless.deploy_as_documented(README, kube, controller, REPO) as function:
        meta = function["metadata"]
        made = kubeless.made_deployment(kube.api_client, meta["name"], meta["namespace"],
                                        controller)
        yield kubeless.prepare_pod(kube.api_client, made, tmp_path_factory.mktemp("pod"))


@pytest.fixture
def serve(kube_1_21: Kube, deployed: kubeless.PreparedPod, network: Callable[[], Network],
          tmp_path: Path, servers: List[Server]) -> Serve:
    def make(env: Optional[Dict[str, str]] = None,
             pod: Optional[kubeless.PreparedPod] = None,
             files: Optional[Dict[str, Path]] = None) -> Server:
        prepared = pod or deployed
        workdir = tmp_path / f"kubeless-{len(servers)}"
        running = kubeless.start_runtime(
            kube_1_21.api_client, network(), prepared, workdir,
            kubeless.pod_login(kube_1_21, prepared, workdir / "account"), env, files)
        server = Server("kubeless", f"http://{running.host.ip}:{kubeless_runtime.PORT}",
                        running.process, running.host)
        servers.append(server)
        return server

    return make


def test_the_pod_runs_python_3_8_with_the_image_packages_and_what_the_init_containers_made(
        runtime_python: Path, deployed: kubeless.PreparedPod) -> None:
    version = subprocess.run([str(runtime_python), "-c", "import sys, bottle, cherrypy; "
                              "print(sys.version_info[:2], bottle.__version__)"],
                             capture_output=True, text=True, check=True).stdout
    assert version.split() == ["(3,", "8)", "0.12.13"]
    function_dir = deployed.volume(kubeless_runtime.MOUNT)
    assert (function_dir / "handler.py").read_bytes() == (ADAPTER / "handler.py").read_bytes()
    assert (function_dir / "function" / "runtime.py").is_file()
    (installed,) = (function_dir / "lib").glob("python3.8/site-packages/kubernetes")
    # Unzipped and installed by the init containers as the pod's user, in its fsGroup.
    assert {(path.stat().st_uid, path.stat().st_gid)
            for path in (function_dir / "handler.py", installed)} == {(1000, 1000)}


def test_the_runtime_runs_as_the_user_the_controller_gave_the_pod(
        serve: Serve, deployed: kubeless.PreparedPod) -> None:
    assert deployed.pod["spec"]["securityContext"] == {"runAsUser": 1000, "fsGroup": 1000}
    server = serve(NO_CLUSTER)
    assert procs.ids(server.process.pid) == {
        "Uid": ["1000"] * 4, "Gid": ["0"] * 4, "Groups": ["0", "1000"]}
    with server.reach():
        reply = post(server.url, KUBELESS_HEADERS,
                     contract.wire_body_for("default", "alpine", TIME))
    assert reply.status == 200, (reply.body, server.log())


def test_contract(serve: Serve) -> None:
    server = serve(NO_CLUSTER)
    with server.reach():
        ran = contract.check_contract(server.url, PLAIN_JSON, token=False)
    # kubeless_direct: parsed dict; webhook_post (charset in Content-Type): raw bytes.
    assert {"wire/kubeless_direct.http", "wire/webhook_post.http", "json-missing-rule"} <= set(
        ran)


def test_contract_with_token(serve: Serve) -> None:
    server = serve({**NO_CLUSTER, "FALCO_RESPONDER_TOKEN": contract.TOKEN})
    with server.reach():
        assert contract.check_contract(server.url, PLAIN_JSON, token=True)


def test_health_and_metrics(serve: Serve) -> None:
    server = serve(NO_CLUSTER)
    with server.reach():
        with urllib.request.urlopen(server.url + "/healthz", timeout=5) as reply:
            assert reply.read() == b"OK"
        post(server.url, KUBELESS_HEADERS, contract.wire_body_for("default", "alpine", TIME))
        with urllib.request.urlopen(server.url + "/metrics", timeout=5) as reply:
            assert b'function_calls_total{method="POST"} 1.0' in reply.read()


def test_the_engine_is_built_before_requests_not_per_request(serve: Serve) -> None:
    """Once in the server, once in the forkserver every request's child is forked from."""
    server = serve(NO_CLUSTER)
    with server.reach():
        for _ in range(3):
            reply = post(server.url, KUBELESS_HEADERS,
                         contract.wire_body_for("default", "alpine", TIME))
            assert reply.status == 200
    assert server.log().count('"message": "started"') == 2, server.log()


def test_a_function_slower_than_func_timeout_gets_408(
        serve: Serve, kube_1_21: Kube, kubeless_release: KubelessRelease,
        tmp_path: Path) -> None:
    """Deployed with ``--timeout 1``: the runtime gives up on the handler with 408."""
    (tmp_path / "slow.py").write_text(
        "import time\n\ndef handler(event, context):\n    time.sleep(30)\n")
    done = kubeless.cli(["function", "deploy", "slow", "--runtime", kubeless_runtime.RUNTIME,
                         "--handler", "slow.handler", "--from-file", "slow.py",
                         "--timeout", "1", "--namespace", kube_1_21.namespace],
                        kube_1_21.server.kubeconfig, tmp_path)
    assert done.returncode == 0, done.stderr
    api, controller = kube_1_21.api_client, kubeless_release.controller
    with kubeless.function_lifetime(api, controller, "slow", kube_1_21.namespace):
        made = kubeless.made_deployment(api, "slow", kube_1_21.namespace, controller)
        server = serve(pod=kubeless.prepare_pod(api, made, tmp_path / "slow-pod"))
        with server.reach():
            reply = post(server.url, KUBELESS_HEADERS, b"{}")
    assert reply.status == 408, reply.body


def test_503_passes_through_when_kubernetes_is_unreachable(
        serve: Serve, free_port: Callable[..., int]) -> None:
    """The pod's API server address leads nowhere (nothing listens on that port)."""
    server = serve({"KUBERNETES_SERVICE_PORT": str(free_port()), **contract.GIVE_UP_FAST})
    with server.reach():
        reply = post(server.url, KUBELESS_HEADERS,
                     contract.wire_body_for("default", "alpine", TIME))
    assert reply.status == 503, (reply.body, server.log())
    assert reply.json()["error"]["type"] == "kubernetes_unavailable"


def test_end_to_end_through_the_runtime(serve: Serve, kube_1_21: Kube,
                                        alert_time: Callable[[], str]) -> None:
    server = serve()
    with server.reach():
        contract.check_end_to_end(server.url, KUBELESS_HEADERS, kube_1_21, alert_time)


LIMIT_ONE = """
guards: {rate_limit: {actions: 1, per_seconds: 60}}
rules: [{name: r, match: {rules: ["Terminal shell in container"]}, actions: [{action: terminate}]}]
"""


def test_dedup_and_the_blast_radius_hold_across_the_per_request_children(
        serve: Serve, kube_1_21: Kube, alert_time: Callable[[], str], tmp_path: Path) -> None:
    kube = kube_1_21
    policy = tmp_path / "policy.yaml"
    policy.write_text(LIMIT_ONE)
    mounted = "/etc/falco-responder/policy.yaml"
    server = serve({"FALCO_RESPONDER_POLICY": mounted}, files={mounted: policy})
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
