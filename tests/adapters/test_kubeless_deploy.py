"""Kubeless as the README deploys it, all of it real: on Kubernetes 1.21 (the last release
serving the ``v1beta1`` APIs Kubeless is written against), the release's CRDs, RBAC and
``kubeless-config`` installed as its manifests define them, ``deploy/rbac/`` applied, the
README's own ``kubeless function deploy ...`` run with the real CLI, the real
function-controller turning the Function into its Deployment, Service and ConfigMap, and
that Deployment's pod run as a kubelet would (``tests.testbed.kubeless.prepare_pod``, then
``start_runtime``): its init containers unpack and check the zip and ``pip install`` its
deps, then the upstream runtime serves the function, logged in as the pod's ServiceAccount,
on a host answering to the Service's name, where Falcosidekick's kubeless output reaches
it."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any, Callable, Dict, Iterator

import pytest

from adapters.kubeless.bundle import bundle, manifest
from tests.adapters import contract
from tests.adapters.conftest import KubelessRelease
from tests.adapters.runtimes import REPO
from tests.testbed import kubeless, kubeless_runtime, procs
from tests.testbed.kube import Kube
from tests.testbed.netns import Network
from tests.testbed.sidekick import Sidekick

pytestmark = pytest.mark.cluster
README = REPO / "README.md"
ZIP = REPO / "build" / "kubeless" / "falco-responder.zip"


@pytest.fixture
def installed(kube_1_21: Kube) -> Kube:
    return kube_1_21


@pytest.fixture
def controller(kubeless_release: KubelessRelease) -> procs.Process:
    return kubeless_release.controller


@pytest.fixture
def deployed(installed: Kube, controller: procs.Process) -> Iterator[Dict[str, Any]]:
    """The README's command, run as written (after its ``bundle`` step), with the admin's
    kubeconfig; yields the Function it created."""
    bundle(ZIP)
    with kubeless.deploy_as_documented(README, installed, controller, REPO) as function:
        yield function


@pytest.fixture
def applied(installed: Kube, controller: procs.Process) -> Iterator[Dict[str, Any]]:
    """The README's other way: the policy ConfigMap, then the manifest that
    ``python -m adapters.kubeless.bundle --manifest`` writes, applied."""
    installed.apply_manifest(REPO / "deploy" / "policy-configmap.yaml")
    (function,) = installed.apply_manifest(manifest(bundle(ZIP)))
    with kubeless.function_lifetime(installed.api_client, controller,
                                    function["metadata"]["name"],
                                    function["metadata"]["namespace"]) as made:
        yield made


def test_the_release_config_names_the_python38_runtime(installed: Kube) -> None:
    config = installed.core.read_namespaced_config_map("kubeless-config", kubeless.NAMESPACE)
    runtimes = config.data["runtime-images"]
    assert '"name": "python38"' in runtimes and "$KUBELESS_DEPS_FILE" in runtimes
    assert config.data["service-type"] == "ClusterIP"


def test_the_readme_command_creates_the_function_it_documents(
        deployed: Dict[str, Any]) -> None:
    spec = deployed["spec"]
    archive = ZIP.read_bytes()
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


def test_the_controller_makes_the_deployment_service_and_configmap_of_the_function(
        deployed: Dict[str, Any], installed: Kube, controller: procs.Process) -> None:
    meta, spec = deployed["metadata"], deployed["spec"]
    made = kubeless.made_deployment(installed.api_client, meta["name"], meta["namespace"],
                                    controller)
    assert [(o["kind"], o["name"]) for o in made["metadata"]["ownerReferences"]] == [
        ("Function", meta["name"])]
    pod = made["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "falco-responder"
    prepare, install = pod["initContainers"]
    digest = hashlib.sha256(ZIP.read_bytes()).hexdigest()
    assert f"echo '{digest}  /tmp/func.decoded'" in prepare["args"][0]
    assert "pip install --prefix=$KUBELESS_INSTALL_VOLUME" in install["args"][0]
    (runtime,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in runtime["env"]}
    assert env["POD_NAMESPACE"] == "falco-responder"
    # What the bench gives the runtime without a controller is what the controller gives it.
    expected = kubeless_runtime.function_env("handler", "handler", timeout="10")
    assert {k: env.get(k) for k in expected} == expected
    assert runtime["image"].startswith("kubeless/python@")
    service = installed.core.read_namespaced_service(meta["name"], meta["namespace"])
    assert [(p.port, p.target_port) for p in service.spec.ports] == [(8080, 8080)]
    config = installed.core.read_namespaced_config_map(meta["name"], meta["namespace"])
    assert config.data == {"handler": spec["function"], "requirements.txt": spec["deps"]}


@pytest.mark.parametrize("route", ["deployed", "applied"])
def test_falcosidekick_kubeless_output_reaches_the_function_the_controller_deployed(
        route: str, request: pytest.FixtureRequest, installed: Kube,
        controller: procs.Process, network: Callable[[], Network],
        falcosidekick: Callable[..., Sidekick], alert_time: Callable[[], str],
        tmp_path: Path) -> None:
    """Deployed by the README's command, or by its applied manifest (its policy ConfigMap
    mounted, its namespace from the downward API): the Deployment the controller made is
    run, and a shell alert given to Falcosidekick's kubeless output kills the pod through
    it."""
    meta = request.getfixturevalue(route)["metadata"]
    api = installed.api_client
    made = kubeless.made_deployment(api, meta["name"], meta["namespace"], controller)
    prepared = kubeless.prepare_pod(api, made, tmp_path / "pod")
    net = network()
    pod = kubeless.start_runtime(api, net, prepared, tmp_path / "pod" / "runtime",
                                 kubeless.pod_login(installed, prepared, tmp_path / "account"))
    try:
        sidekick = falcosidekick(
            {"kubeless": {"function": meta["name"], "namespace": meta["namespace"],
                          "port": kubeless_runtime.PORT}}, host=net.host("falcosidekick"))
        contract.check_falcosidekick_chain(sidekick, installed, alert_time)
    finally:
        pod.stop()
