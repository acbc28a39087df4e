"""A cluster that behaves like one: the test bed's kube-apiserver plus the real
kube-controller-manager and kube-scheduler, and kwok simulating one node.

Deployments get ReplicaSets and pods, pods are scheduled and become Running/Ready with IPs,
a deleted pod is replaced, owners' status is the controllers' own, and every namespace gets
its ``default`` ServiceAccount. No container runs: a pod's programs, where a test needs them,
are started by the test bed itself from the pod's spec. What the bare API server does
instead is in docs/testing.md; tests that need neither controllers nor pods use it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, List

from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.testbed import procs
from tests.testbed.apiserver import ApiServer, start_apiserver
from tests.testbed.controller_manager import start_controller_manager
from tests.testbed.kwok import NODE, node_manifest, start_kwok
from tests.testbed.scheduler import start_scheduler

PROBE_NAMESPACE = "testbed-probe"


class Cluster:
    """A running cluster: ``apiserver`` (an :class:`ApiServer`, admin login included) and
    the processes acting on it."""

    def __init__(self, apiserver: ApiServer, processes: List[procs.Process]) -> None:
        self.apiserver = apiserver
        self.processes = processes
        self.node = NODE
        self.ready_seconds = 0.0

    def check_alive(self) -> None:
        """Fail naming the process, with its last log lines, if any of them died."""
        for process in self.processes:
            if not process.alive():
                raise RuntimeError(f"{process.name} exited with code {process.popen.returncode}"
                                   f"; its last log lines:\n{process.log_tail()}")

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.apiserver.stop()


def _running_pods(core: Any, namespace: str) -> List[Any]:
    pods = core.list_namespaced_pod(namespace).items
    return [pod for pod in pods if pod.status.phase == "Running"
            and any(c.type == "Ready" and c.status == "True"
                    for c in pod.status.conditions or ())]


def _probe(cluster: Cluster, timeout: float) -> None:
    """Wait until each controller has visibly acted: the node is Ready, the probe
    namespace has its ServiceAccount, and the probe Deployment's pod is Running."""
    api = cluster.apiserver.api_client
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=PROBE_NAMESPACE)))
    labels = {"app": "probe"}
    deadline = time.monotonic() + timeout
    created = False
    while True:
        cluster.check_alive()
        try:
            core.read_namespaced_service_account("default", PROBE_NAMESPACE)
            if not created:
                # Pods are refused until the namespace's ServiceAccount exists.
                apps.create_namespaced_deployment(PROBE_NAMESPACE, client.V1Deployment(
                    metadata=client.V1ObjectMeta(name="probe"),
                    spec=client.V1DeploymentSpec(
                        replicas=1, selector=client.V1LabelSelector(match_labels=labels),
                        template=client.V1PodTemplateSpec(
                            metadata=client.V1ObjectMeta(labels=labels),
                            spec=client.V1PodSpec(containers=[client.V1Container(
                                name="probe", image="registry.k8s.io/pause:3.10")])))))
                created = True
            if _running_pods(core, PROBE_NAMESPACE):
                return
        except ApiException as error:
            if error.status != 404:
                raise
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the cluster did not come up within {timeout:.0f}s (probe namespace "
                f"ServiceAccount, then a Running pod); logs under {cluster.apiserver.workdir}")
        time.sleep(0.1)


def start_cluster(workdir: Path, timeout: float = 120.0) -> Cluster:
    """Start the API server, then the controllers and kwok; return once they all act."""
    started = time.monotonic()
    apiserver = start_apiserver(workdir / "apiserver")
    processes: List[procs.Process] = []
    cluster = Cluster(apiserver, processes)
    try:
        client.CoreV1Api(apiserver.api_client).create_node(node_manifest())
        processes.append(start_kwok(workdir / "kwok", apiserver))
        processes.append(start_scheduler(workdir / "kube-scheduler", apiserver))
        processes.append(start_controller_manager(workdir / "kube-controller-manager",
                                                  apiserver))
        _probe(cluster, timeout)
    except BaseException:
        cluster.stop()
        raise
    cluster.ready_seconds = time.monotonic() - started
    return cluster
