"""What a bare kube-apiserver does, as docs/testing.md states it, and the pod factories."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.testbed.apiserver import ApiServer
from tests.testbed.kube import MIRROR_ANNOTATION, Kube

pytestmark = pytest.mark.cluster


def test_system_namespaces_exist_without_default_service_accounts(
    apiserver: ApiServer, kube: Kube
) -> None:
    namespaces: Any = kube.core.list_namespace()
    names = {ns.metadata.name for ns in namespaces.items}
    assert {"default", "kube-system", "kube-public"} <= names
    bare = f"{kube.namespace}-bare"
    kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=bare)))
    # No controller makes the "default" account (the fixtures do, in their namespaces).
    assert kube.core.list_namespaced_service_account(bare).items == []
    with pytest.raises(ApiException) as refused:
        kube.create_pod("p", bare)
    assert refused.value.status == 403
    assert 'serviceaccount \\"default\\" not found' in str(refused.value.body)


def test_unbound_pod_goes_at_once_bound_pod_is_only_marked(kube: Kube) -> None:
    kube.create_pod("unbound")
    kube.create_pod("bound", node_name="somewhere")

    kube.core.delete_namespaced_pod("unbound", kube.namespace)
    kube.core.delete_namespaced_pod("bound", kube.namespace)

    assert kube.read_pod("unbound") is None
    marked = kube.read_pod("bound")
    assert marked is not None
    assert marked.metadata.deletion_timestamp is not None
    assert marked.metadata.deletion_grace_period_seconds == 30
    kube.core.delete_namespaced_pod("bound", kube.namespace, grace_period_seconds=0)
    assert kube.read_pod("bound") is None


def test_pods_stay_pending_with_the_default_service_account(kube: Kube) -> None:
    pod = kube.create_standalone_pod("solo").pod
    assert pod.status.phase == "Pending"
    assert pod.spec.service_account_name == "default"
    assert pod.metadata.owner_references is None


def test_deployment_pod_owner_chain_and_status(kube: Kube) -> None:
    family = kube.create_deployment_pod("web", replicas=2)
    replicaset, _deployment = family.owners
    (ref,) = family.pod.metadata.owner_references
    assert (ref.kind, ref.name, ref.uid) == ("ReplicaSet", replicaset.metadata.name,
                                             replicaset.metadata.uid)
    (rs_ref,) = replicaset.metadata.owner_references
    assert (rs_ref.kind, rs_ref.name) == ("Deployment", "web")
    stored: Any = kube.apps.read_namespaced_deployment("web", kube.namespace)
    assert (stored.status.replicas, stored.status.ready_replicas,
            stored.status.available_replicas) == (2, 2, 2)
    stored_rs: Any = kube.apps.read_namespaced_replica_set(replicaset.metadata.name,
                                                           kube.namespace)
    assert stored_rs.status.ready_replicas == 2
    # No controller recreates a deleted pod.
    kube.core.delete_namespaced_pod(family.name, kube.namespace)
    assert kube.core.list_namespaced_pod(kube.namespace).items == []


@pytest.mark.parametrize(
    ("kind", "make"),
    [
        ("DaemonSet", lambda kube: kube.create_daemonset_pod("agent")),
        ("StatefulSet", lambda kube: kube.create_statefulset_pod("db")),
    ],
)
def test_workload_pod_is_owned(kube: Kube, kind: str, make: object) -> None:
    family = make(kube)  # type: ignore[operator]
    (ref,) = family.pod.metadata.owner_references
    assert ref.kind == kind
    assert ref.controller is True
    assert ref.uid == family.owners[0].metadata.uid


def test_mirror_pod_is_owned_by_its_node(kube: Kube) -> None:
    family = kube.create_mirror_pod("kube-scheduler", node="node-a")
    pod = family.pod
    assert MIRROR_ANNOTATION in pod.metadata.annotations
    (ref,) = pod.metadata.owner_references
    assert (ref.kind, ref.name) == ("Node", "node-a")
    assert pod.spec.node_name == "node-a"
    assert not pod.spec.service_account_name


def test_token_kubeconfig_has_only_the_accounts_rbac(apiserver: ApiServer, kube: Kube) -> None:
    kube.create_service_account("reader")
    kubeconfig = kube.token_kubeconfig("reader")
    with apiserver.new_client(kubeconfig) as as_reader:
        review = client.AuthenticationV1Api(as_reader)
        assert review is not None
        with pytest.raises(ApiException) as denied:
            client.CoreV1Api(as_reader).list_namespaced_pod(kube.namespace)
        assert denied.value.status == 403
        assert f"system:serviceaccount:{kube.namespace}:reader" in str(denied.value.body)
