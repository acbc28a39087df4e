"""Kubeless as the README deploys it, all of it real: on Kubernetes 1.21 (the last release
serving the ``v1beta1`` APIs Kubeless is written against), the release's CRDs, RBAC and
``kubeless-config`` installed as its manifests define them, ``deploy/rbac/`` applied, the
README's own ``kubeless function deploy ...`` run with the real CLI, the real
function-controller turning the Function into its Deployment, Service and ConfigMap, and
that Deployment's pod run as a kubelet would (``tests.testbed.kubeless.run_function``): its
init containers unpack and check the zip and ``pip install`` its deps, then the upstream
runtime serves the function, logged in as the pod's ServiceAccount, on a host answering to
the Service's name, where Falcosidekick's kubeless output reaches it."""

from __future__ import annotations

import base64
import contextlib
import hashlib
from pathlib import Path
from typing import Any, Callable, Dict, Iterator

import pytest
from kubernetes import client

from adapters.kubeless.bundle import bundle, manifest
from tests.adapters import contract
from tests.adapters.runtimes import REPO, venv
from tests.testbed import kubeless, kubeless_runtime, procs
from tests.testbed.apiserver import ApiServer
from tests.testbed.kube import Kube
from tests.testbed.netns import Network
from tests.testbed.pods import in_cluster
from tests.testbed.sidekick import Sidekick

pytestmark = pytest.mark.cluster
README = REPO / "README.md"
ZIP = REPO / "build" / "kubeless" / "falco-responder.zip"
FUNCTIONS = ("kubeless.io", "v1beta1", "functions")


@pytest.fixture
def installed(apiserver_1_21: ApiServer, tmp_path: Path) -> Kube:
    """The release's objects and ``deploy/rbac/`` on Kubernetes 1.21, the CRD serving; the
    ``Kube`` is bound to a fresh namespace for the test's own pods."""
    kube = Kube(apiserver_1_21, tmp_path)
    kube.apply_objects(kubeless.release_objects())
    for rbac in sorted((REPO / "deploy" / "rbac").glob("*.yaml")):
        kube.apply_manifest(rbac)
    custom = client.CustomObjectsApi(kube.api_client)
    procs.wait_until(lambda: _serving(custom), 30, "the Function CRD serving")
    kube.namespace = kube.create_namespace()
    return kube


def _serving(custom: Any) -> bool:
    try:
        custom.list_cluster_custom_object(*FUNCTIONS)
        return True
    except client.ApiException:
        return False


@pytest.fixture
def controller(installed: Kube, tmp_path: Path) -> Iterator[procs.Process]:
    """The function-controller, in-cluster as the release's ``controller-acct``."""
    server = installed.server
    login = in_cluster(tmp_path / "controller-account",
                       installed.token(kubeless.ACCOUNT, kubeless.NAMESPACE),
                       Path(server.ca_file), kubeless.NAMESPACE, server.host)
    process = kubeless.start_controller(tmp_path / "controller", installed.api_client, login)
    try:
        yield process
    finally:
        process.stop()


@contextlib.contextmanager
def _function(installed: Kube, controller: procs.Process, name: str, namespace: str
              ) -> Iterator[Dict[str, Any]]:
    """The Function just created, and once the test is done, gone with what the controller
    made from it."""
    custom = client.CustomObjectsApi(installed.api_client)
    try:
        yield dict(custom.get_namespaced_custom_object(FUNCTIONS[0], FUNCTIONS[1], namespace,
                                                        FUNCTIONS[2], name))
    finally:
        try:
            # Once the controller has acted on it, so nothing it makes comes after the cleanup.
            kubeless.made_deployment(installed.api_client, name, namespace, controller)
        finally:
            custom.delete_namespaced_custom_object(FUNCTIONS[0], FUNCTIONS[1], namespace,
                                                   FUNCTIONS[2], name)
        # The controller deletes its Service and ConfigMap, then drops its finalizer; its
        # Deployment delete goes to extensions/v1beta1, gone since 1.16, so the Deployment is
        # left to the garbage collector (its owner is the Function), which a bare API server
        # does not run: done here as it would.
        procs.wait_until(lambda: _gone(lambda: custom.get_namespaced_custom_object(
            FUNCTIONS[0], FUNCTIONS[1], namespace, FUNCTIONS[2], name)), 30,
            "the controller letting the Function go", controller)
        assert _gone(lambda: installed.core.read_namespaced_service(name, namespace))
        installed.apps.delete_namespaced_deployment(name, namespace)


@pytest.fixture
def deployed(installed: Kube, controller: procs.Process) -> Iterator[Dict[str, Any]]:
    """The README's command, run as written (after its ``bundle`` step), with the admin's
    kubeconfig; yields the Function it created."""
    bundle(ZIP)
    words = kubeless.documented_deploy(README)
    assert words[:3] == ["kubeless", "function", "deploy"]
    done = kubeless.cli(words[1:], installed.server.kubeconfig, REPO)
    assert done.returncode == 0, done.stderr
    with _function(installed, controller, words[3],
                   words[words.index("--namespace") + 1]) as function:
        yield function


@pytest.fixture
def applied(installed: Kube, controller: procs.Process) -> Iterator[Dict[str, Any]]:
    """The README's other way: the policy ConfigMap, then the manifest that
    ``python -m adapters.kubeless.bundle --manifest`` writes, applied."""
    installed.apply_manifest(REPO / "deploy" / "policy-configmap.yaml")
    (function,) = installed.apply_manifest(manifest(bundle(ZIP)))
    with _function(installed, controller, function["metadata"]["name"],
                   function["metadata"]["namespace"]) as made:
        yield made


def _gone(read: Callable[[], Any]) -> bool:
    try:
        read()
        return False
    except client.ApiException as error:
        if error.status != 404:
            raise
        return True


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
    assert {k: env[k] for k in ("FUNC_HANDLER", "MOD_NAME", "FUNC_TIMEOUT", "FUNC_RUNTIME",
                                "FUNC_PORT", "POD_NAMESPACE")} == {
        "FUNC_HANDLER": "handler", "MOD_NAME": "handler", "FUNC_TIMEOUT": "10",
        "FUNC_RUNTIME": "python3.8", "FUNC_PORT": "8080", "POD_NAMESPACE": "falco-responder"}
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
    net = network()
    made = kubeless.made_deployment(installed.api_client, meta["name"], meta["namespace"],
                                    controller)
    account = made["spec"]["template"]["spec"]["serviceAccountName"]
    server = installed.server
    login = in_cluster(tmp_path / "account", installed.token(account, meta["namespace"]),
                       Path(server.ca_file), meta["namespace"], server.host)
    python = venv("kubeless-runtime", "3.8", kubeless_runtime.image_requirements())
    pod = kubeless.run_function(
        installed.api_client, net, made, tmp_path / "pod", python / "bin" / "python",
        kubeless_runtime.pip_python(), login)
    try:
        sidekick = falcosidekick(
            {"kubeless": {"function": meta["name"], "namespace": meta["namespace"],
                          "port": kubeless_runtime.PORT}}, host=net.host("falcosidekick"))
        contract.check_falcosidekick_chain(sidekick, installed, alert_time)
    finally:
        pod.stop()
