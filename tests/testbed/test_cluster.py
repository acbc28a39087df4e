"""The cluster's controllers act: pods run, come back when deleted, owners' status is the
controllers' own, and every namespace gets its ServiceAccount."""

from __future__ import annotations

import time

from tests.testbed.cluster import Cluster
from tests.testbed.kube import Kube
from tests.testbed.pods import wait_running


def test_a_deployment_runs_and_its_deleted_pod_is_replaced(
    cluster: Cluster, cluster_kube: Kube
) -> None:
    cluster_kube.create_deployment("alpine", replicas=2)
    first = wait_running(cluster_kube.api_client, cluster_kube.namespace, "app=alpine", 2)
    victim = first[0]["metadata"]

    cluster_kube.core.delete_namespaced_pod(victim["name"], cluster_kube.namespace)

    deadline = time.monotonic() + 30
    while True:
        pods = wait_running(cluster_kube.api_client, cluster_kube.namespace, "app=alpine", 2)
        uids = {pod["metadata"]["uid"] for pod in pods}
        if victim["uid"] not in uids:
            break
        assert time.monotonic() < deadline, "the deleted pod was not replaced"
        time.sleep(0.1)
    assert all(pod["spec"]["nodeName"] == cluster.node for pod in pods)
    assert all(pod["status"]["podIP"].startswith("10.244.") for pod in pods)


def test_owner_status_is_written_by_the_controllers(cluster_kube: Kube) -> None:
    cluster_kube.create_deployment("web", replicas=3)
    wait_running(cluster_kube.api_client, cluster_kube.namespace, "app=web", 3)

    deadline = time.monotonic() + 30
    while True:
        status = cluster_kube.apps.read_namespaced_deployment(
            "web", cluster_kube.namespace).status
        if status.available_replicas == 3:
            break
        assert time.monotonic() < deadline, f"Deployment status never caught up: {status}"
        time.sleep(0.1)
    (replicaset,) = cluster_kube.apps.list_namespaced_replica_set(cluster_kube.namespace).items
    assert replicaset.status.ready_replicas == 3


def test_a_new_namespace_gets_its_default_service_account(cluster_kube: Kube) -> None:
    name = cluster_kube.core.create_namespace(
        {"metadata": {"generateName": "sa-"}}).metadata.name
    deadline = time.monotonic() + 10
    while not any(sa.metadata.name == "default" for sa in
                  cluster_kube.core.list_namespaced_service_account(name).items):
        assert time.monotonic() < deadline, "no default ServiceAccount was made"
        time.sleep(0.05)
