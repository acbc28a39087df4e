"""Kubernetes 1.21 assembled from its release (``kubernetes_release``): the version its API
server and controller manager say, the ``v1beta1`` APIs Kubeless needs, custom resources
that can be written (with the release's own reflect2 and a Go newer than 1.17, every such
write panics), and its garbage collector at work."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from kubernetes import client

from tests.testbed import peers, procs
from tests.testbed.apiserver import ApiServer
from tests.testbed.kube import Kube

pytestmark = pytest.mark.cluster


def test_it_is_the_1_21_release(apiserver_1_21: ApiServer) -> None:
    version = client.VersionApi(apiserver_1_21.api_client).get_code()
    assert (version.git_version, version.major, version.minor) == ("v1.21.14", "1", "21")


def test_it_serves_the_v1beta1_apis_removed_in_1_22(apiserver_1_21: ApiServer) -> None:
    groups = {group.name: [v.version for v in group.versions] for group in
              client.ApisApi(apiserver_1_21.api_client).get_api_versions().groups}
    assert "v1beta1" in groups["apiextensions.k8s.io"]
    assert "v1beta1" in groups["rbac.authorization.k8s.io"]


def test_a_v1beta1_crd_serves_custom_resources_that_can_be_written(
        apiserver_1_21: ApiServer, tmp_path: Path) -> None:
    kube = Kube(apiserver_1_21, tmp_path)
    kube.apply_objects([{
        "apiVersion": "apiextensions.k8s.io/v1beta1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "version": "v1", "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"}}}])
    namespace = kube.create_namespace()
    custom = client.CustomObjectsApi(apiserver_1_21.api_client)
    custom.create_namespaced_custom_object("example.com", "v1", namespace, "widgets", {
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
        "spec": {"size": 3}})
    read = custom.get_namespaced_custom_object("example.com", "v1", namespace, "widgets", "w")
    assert read["spec"] == {"size": 3}


def test_its_controller_manager_is_the_same_release() -> None:
    done = subprocess.run([str(peers.binary("kube-controller-manager-1.21")), "--version"],
                          capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "Kubernetes v1.21.14", done


def test_its_garbage_collector_deletes_what_a_deleted_owner_leaves(
        apiserver_1_21: ApiServer, tmp_path: Path) -> None:
    kube = Kube.in_new_namespace(apiserver_1_21, tmp_path)
    owner = kube.core.create_namespaced_config_map(kube.namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="owner")))
    kube.core.create_namespaced_config_map(kube.namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="dependent", owner_references=[
            client.V1OwnerReference(api_version="v1", kind="ConfigMap", name="owner",
                                    uid=owner.metadata.uid)])))
    kube.core.delete_namespaced_config_map("owner", kube.namespace)
    procs.wait_until(lambda: not [c for c in kube.core.list_namespaced_config_map(
        kube.namespace).items if c.metadata.name == "dependent"], 30,
        "the garbage collector deleting the dependent")
