"""Fixtures for adapter tests: the function's identity exactly as deploy/ ships it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, List

import pytest
from kubernetes import client

from tests.adapters.runtimes import Server
from tests.testbed import kubeless, procs
from tests.testbed.apiserver import ApiServer
from tests.testbed.kube import Kube

REPO = Path(__file__).resolve().parents[2]
#: deploy/rbac's namespace: the function's own, where it keeps its guard Leases.
RBAC_NAMESPACE = "falco-responder"


@pytest.fixture
def deployed_env(kube: Kube) -> Dict[str, str]:
    """Environment for a runtime server that logs in as deploy/rbac's ServiceAccount
    (falco-responder/falco-responder, bound to the committed ClusterRole)."""
    apply_deploy_rbac(kube)
    kubeconfig = kube.token_kubeconfig("falco-responder", RBAC_NAMESPACE)
    return {"KUBECONFIG": str(kubeconfig), "FALCO_RESPONDER_CLUSTER": "auto",
            "POD_NAMESPACE": RBAC_NAMESPACE}


def apply_deploy_rbac(kube: Kube) -> None:
    """``deploy/rbac/`` as it ships: the function's namespace, ServiceAccount and roles."""
    for manifest in sorted((REPO / "deploy" / "rbac").glob("*.yaml")):
        kube.apply_manifest(manifest)


@pytest.fixture
def alert_time() -> Callable[[], str]:
    """Now, as Falco writes times (the stale-target guard skips pods newer than the alert)."""
    def now() -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime(time.time() + 1))
    return now


@pytest.fixture
def servers() -> Iterator[List[Server]]:
    """Runtime servers a test started: every one is stopped when the test ends."""
    started: List[Server] = []
    yield started
    for server in started:
        server.stop()


@dataclass(frozen=True)
class KubelessRelease:
    """Kubeless installed on Kubernetes 1.21 and its function-controller running."""

    server: ApiServer
    controller: procs.Process


@pytest.fixture(scope="module")
def kubeless_release(apiserver_1_21: ApiServer, tmp_path_factory: pytest.TempPathFactory
                     ) -> Iterator[KubelessRelease]:
    """The release's CRDs, RBAC and ``kubeless-config`` as its manifests define them, and
    ``deploy/rbac/``, on Kubernetes 1.21 (the last release serving the ``v1beta1`` APIs
    Kubeless is written against); the function-controller in-cluster as the release's
    ``controller-acct``. One per test module."""
    workdir = tmp_path_factory.mktemp("kubeless-release")
    kube = Kube(apiserver_1_21, workdir)
    kubeless.install(kube)
    apply_deploy_rbac(kube)
    login = kubeless.login(kube, kubeless.ACCOUNT, kubeless.NAMESPACE,
                           workdir / "controller-account")
    controller = kubeless.start_controller(workdir / "controller", kube.api_client, login)
    try:
        yield KubelessRelease(apiserver_1_21, controller)
    finally:
        controller.stop()


@pytest.fixture
def kube_1_21(kubeless_release: KubelessRelease, tmp_path: Path) -> Kube:
    """Object factories on the Kubeless cluster, bound to a namespace made for this test.
    The test starts from no guard state, as a fresh install does: the Leases an earlier
    test's function left in deploy/rbac's namespace are deleted."""
    kube = Kube.in_new_namespace(kubeless_release.server, tmp_path)
    client.CoordinationV1Api(kube.api_client).delete_collection_namespaced_lease(
        RBAC_NAMESPACE)
    return kube
