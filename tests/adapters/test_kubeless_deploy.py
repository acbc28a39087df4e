"""Kubeless as the README deploys it: the release's CRD and ``kubeless-config`` installed,
the README's own ``kubeless function deploy ...`` run with the real CLI against the test
bed, and the Function it creates served by the upstream runtime exactly as that Function
says (``tests.testbed.kubeless``, ``tests.testbed.kubeless_runtime``).

Kubeless's function-controller cannot run on Kubernetes 1.22 or later (it reads its CRD
through the removed ``apiextensions.k8s.io/v1beta1``): one test pins that. What it would do
with the Function, these tests do from the Function itself: its zip unpacked into
``/kubeless`` and its ``deps`` installed as its init containers do, the env the controller
sets (``FUNC_HANDLER``, ``MOD_NAME``, ``FUNC_TIMEOUT``, ``FUNC_RUNTIME``, ``FUNC_MEMORY_LIMIT``,
``FUNC_PORT`` and the Function's own ``--env``), logged in as its ServiceAccount, on a host
named as its Service (``NAME.NAMESPACE.svc.cluster.local:8080``)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any, Callable, Dict, Iterator

import pytest
from kubernetes import client

from adapters.kubeless.bundle import bundle
from tests.adapters import contract
from tests.adapters.runtimes import REPO, Server, venv
from tests.testbed import kubeless, kubeless_runtime, procs
from tests.testbed.kube import Kube
from tests.testbed.netns import Network
from tests.testbed.pods import service_names
from tests.testbed.sidekick import Sidekick

pytestmark = pytest.mark.cluster
README = REPO / "README.md"
FUNCTIONS = ("kubeless.io", "v1beta1", "functions")


@pytest.fixture
def installed(kube: Kube) -> Kube:
    """The release's objects on the test bed's API server, the CRD serving."""
    kube.apply_objects(kubeless.release_objects())
    custom = client.CustomObjectsApi(kube.api_client)
    procs.wait_until(lambda: _serving(custom), 30, "the Function CRD serving")
    return kube


def _serving(custom: Any) -> bool:
    try:
        custom.list_cluster_custom_object(*FUNCTIONS)
        return True
    except client.ApiException:
        return False


@pytest.fixture
def deployed(installed: Kube, deployed_env: Dict[str, str]) -> Iterator[Dict[str, Any]]:
    """The README's command, run as written (after its ``bundle`` step), with the admin's
    kubeconfig; yields the Function it created."""
    bundle(REPO / "build" / "kubeless" / "falco-responder.zip")
    words = kubeless.documented_deploy(README)
    assert words[:3] == ["kubeless", "function", "deploy"]
    name, namespace = words[3], words[words.index("--namespace") + 1]
    done = kubeless.cli(words[1:], installed.server.kubeconfig, REPO)
    assert done.returncode == 0, done.stderr
    custom = client.CustomObjectsApi(installed.api_client)
    try:
        yield dict(custom.get_namespaced_custom_object(FUNCTIONS[0], FUNCTIONS[1], namespace,
                                                        FUNCTIONS[2], name))
    finally:
        custom.delete_namespaced_custom_object(FUNCTIONS[0], FUNCTIONS[1], namespace,
                                               FUNCTIONS[2], name)


def test_the_release_config_names_the_python38_runtime(installed: Kube) -> None:
    config = installed.core.read_namespaced_config_map("kubeless-config", kubeless.NAMESPACE)
    runtimes = config.data["runtime-images"]
    assert '"name": "python38"' in runtimes and "$KUBELESS_DEPS_FILE" in runtimes
    assert config.data["service-type"] == "ClusterIP"


def test_the_readme_command_creates_the_function_it_documents(
        deployed: Dict[str, Any]) -> None:
    spec = deployed["spec"]
    archive = (REPO / "build" / "kubeless" / "falco-responder.zip").read_bytes()
    assert (spec["runtime"], spec["handler"], spec["timeout"]) == (
        "python3.8", "handler.handler", "10")
    assert spec["function-content-type"] == "base64+zip"
    assert base64.b64decode(spec["function"]) == archive
    assert spec["checksum"] == "sha256:" + hashlib.sha256(archive).hexdigest()
    assert spec["deps"] == (REPO / "adapters" / "kubeless" / "requirements.txt").read_text()
    pod = spec["deployment"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "falco-responder"  # deploy/rbac's, or nothing acts
    (container,) = pod["containers"]
    assert {"name": "POD_NAMESPACE", "value": "falco-responder"} in container["env"]


def test_the_controller_cannot_start_on_this_kubernetes(installed: Kube, tmp_path: Path) -> None:
    """What blocks the controller (docs/testing.md): the v1beta1 CRD API is gone."""
    token = installed.token(kubeless.ACCOUNT, kubeless.NAMESPACE)
    controller = kubeless.start_controller(tmp_path, installed.api_client,
                                           installed.server.host, token,
                                           Path(installed.server.ca_file))
    try:
        procs.wait_until(lambda: not controller.alive(), 30, "the controller exiting")
    finally:
        controller.stop()
    assert "Unable to read the configmap: Error while fetching config location: the server " \
           "could not find the requested resource" in controller.log_tail()


def test_falcosidekick_kubeless_output_reaches_the_deployed_function(
        deployed: Dict[str, Any], kube: Kube, network: Callable[[], Network],
        falcosidekick: Callable[..., Sidekick], alert_time: Callable[[], str],
        tmp_path: Path) -> None:
    spec, meta = deployed["spec"], deployed["metadata"]
    zip_file = tmp_path / "function.zip"
    zip_file.write_bytes(base64.b64decode(spec["function"]))
    deps = tmp_path / "requirements.txt"
    deps.write_text(spec["deps"])
    function_dir = kubeless_runtime.layout(tmp_path / "kubeless", zip_file, deps,
                                           kubeless_runtime.pip_python())
    pod = spec["deployment"]["spec"]["template"]["spec"]
    module, handler = spec["handler"].split(".")
    env = {**kubeless_runtime.function_env(module, handler, spec["timeout"], memory="0"),
           **{e["name"]: e["value"] for e in pod["containers"][0]["env"]},
           "KUBECONFIG": str(kube.token_kubeconfig(pod["serviceAccountName"],
                                                   meta["namespace"])),
           "FALCO_RESPONDER_CLUSTER": "auto",
           "FALCO_RESPONDER_STATE_FILE": str(tmp_path / "guards.json")}
    net = network()
    host = net.host("function", service_names(meta["name"], meta["namespace"]))
    host.reach_loopback(contract.apiserver_port(kube))
    python = venv("kubeless-runtime", "3.8", kubeless_runtime.image_requirements())
    process = kubeless_runtime.start(tmp_path / "run", host, function_dir,
                                     python / "bin" / "python", env)
    server = Server("kubeless", f"http://{host.ip}:{kubeless_runtime.PORT}", process, host)
    try:
        sidekick = falcosidekick(
            {"kubeless": {"function": meta["name"], "namespace": meta["namespace"],
                          "port": kubeless_runtime.PORT}}, host=net.host("falcosidekick"))
        contract.check_falcosidekick_chain(sidekick, kube, alert_time)
    finally:
        server.stop()
