"""Knative Eventing's multi-tenant channel-based Broker, with the InMemoryChannel.

Installed from the release's own ``config/`` (CRDs, ConfigMaps, RBAC, Services and the six
Deployments), as ``kubectl apply`` of eventing-core, in-memory-channel and mt-channel-broker
would, minus the webhook: nothing serves it here, so its webhook configurations are left
out and what its defaulting would add is written explicitly (the Broker's class annotation
and config). kwok runs the Deployments' pods; the test bed then starts each pod's program,
built from the same release, with the environment its Deployment gives it, on the pod's IP
(``tests.testbed.pods``). Knative's processes log in as the cluster admin: their RBAC is
Knative's concern, the function's is ours.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.testbed import peers
from tests.testbed.cluster import Cluster
from tests.testbed.kube import Kube
from tests.testbed.netns import Network
from tests.testbed.pods import RunningPod, run_container, service_names, wait_running

SYSTEM_NAMESPACE = "knative-eventing"
BROKER_CLASS = "MTChannelBasedBroker"
EVENTING_GROUP = "eventing.knative.dev"
MESSAGING = "messaging.knative.dev"
IMAGE_PREFIX = "ko://knative.dev/eventing/"

#: Release manifests, relative to the source tree: (folder, glob, file names left out).
MANIFESTS = (
    ("config", "*.yaml", ("500-webhook", "500-job-sink", "500-pingsource", "500-requestreply",
                          "hpa-")),
    ("config/channels/in-memory-channel", "*.yaml", ()),
    ("config/channels/in-memory-channel/configmaps", "*.yaml", ()),
    ("config/channels/in-memory-channel/resources", "*.yaml", ()),
    ("config/channels/in-memory-channel/roles", "*.yaml", ()),
    ("config/channels/in-memory-channel/deployments", "*.yaml", ()),
    ("config/channels/in-memory-channel/webhooks", "secret.yaml", ()),
    ("config/brokers/mt-channel-broker", "*.yaml", ("hpa",)),
)
#: Kinds in the order they must exist in.
ORDER = ("Namespace", "CustomResourceDefinition", "ServiceAccount", "ClusterRole", "Role",
         "ClusterRoleBinding", "RoleBinding", "ConfigMap", "Secret", "Service", "Deployment")
#: The Deployments of the Broker's control and data plane, started in this order.
DEPLOYMENTS = ("eventing-controller", "mt-broker-controller", "imc-controller",
               "imc-dispatcher", "mt-broker-filter", "mt-broker-ingress")
#: Data-plane Deployments whose Service names a Broker's channel host resolves with.
DISPATCHER = "imc-dispatcher"


def release_objects(tree: Path) -> List[Dict[str, Any]]:
    """Every object the release installs here, once each, in the order they must exist in."""
    seen: Dict[Any, Dict[str, Any]] = {}
    for folder, pattern, left_out in MANIFESTS:
        for path in sorted((tree / folder).glob(pattern)):
            if "~" in path.name or path.name.startswith(left_out):
                continue
            for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
                if doc and doc.get("kind") in ORDER:
                    meta = doc["metadata"]
                    seen[(doc["kind"], meta.get("namespace"), meta["name"])] = doc
    return sorted(seen.values(), key=lambda doc: ORDER.index(doc["kind"]))


def _program(tree: Path) -> Any:
    """A container's command line: its ``ko://`` image is the binary built from that path."""
    binaries = {package.lstrip("./"): name
                for name, package in peers.PEERS["knative-eventing"].binaries}

    def argv(container: Dict[str, Any]) -> List[str]:
        image = container["image"]
        if not image.startswith(IMAGE_PREFIX) or image[len(IMAGE_PREFIX):] not in binaries:
            raise RuntimeError(f"no binary of the release is built for image {image}")
        binary = peers.binary(binaries[image[len(IMAGE_PREFIX):]])
        return [str(binary), *(container.get("args") or ())]

    return argv


def channel_host(broker: str, namespace: str) -> str:
    """The InMemoryChannel's host name behind a channel-based Broker (served by the
    dispatcher, which routes by Host header)."""
    return f"{broker}-kne-trigger-kn-channel.{namespace}.svc.cluster.local"


class Eventing:
    """Knative Eventing running against ``cluster`` on ``network``."""

    def __init__(self, cluster: Cluster, network: Network, kube: Kube) -> None:
        self.cluster = cluster
        self.network = network
        self.kube = kube
        self.pods: Dict[str, RunningPod] = {}
        self.custom = client.CustomObjectsApi(cluster.apiserver.api_client)

    @staticmethod
    def broker_url(namespace: str, name: str = "default") -> str:
        """The address Falcosidekick's cloudevents output posts to."""
        return f"http://{service_names('broker-ingress', SYSTEM_NAMESPACE)[0]}/{namespace}/{name}"

    def create_broker(self, namespace: str, name: str = "default",
                      delivery: Optional[Dict[str, Any]] = None,
                      timeout: float = 60.0) -> Dict[str, Any]:
        """A Broker as a user creates it (plus what the defaulting webhook would add);
        returns it once Ready."""
        self.network.add_names(self.pods[DISPATCHER].host.ip, [channel_host(name, namespace)])
        spec: Dict[str, Any] = {"config": {"apiVersion": "v1", "kind": "ConfigMap",
                                           "name": "config-br-default-channel",
                                           "namespace": SYSTEM_NAMESPACE}}
        if delivery:
            spec["delivery"] = delivery
        self.kube.apply_objects([{
            "apiVersion": f"{EVENTING_GROUP}/v1", "kind": "Broker",
            "metadata": {"name": name, "namespace": namespace,
                         "annotations": {f"{EVENTING_GROUP}/broker.class": BROKER_CLASS}},
            "spec": spec,
        }])
        return self.wait_ready("brokers", namespace, name, timeout)

    def wait_ready(self, plural: str, namespace: str, name: str, timeout: float = 60.0,
                   group: str = EVENTING_GROUP) -> Dict[str, Any]:
        """The object once its ``Ready`` condition is True for its current generation; fails
        with its conditions. A Trigger is also waited on until its subscriber is wired into
        the channel's dispatcher, so an event sent next is routed by it."""
        deadline = time.monotonic() + timeout
        obj: Dict[str, Any] = {}
        while True:
            self.check_alive()
            try:
                obj = self.custom.get_namespaced_custom_object(group, "v1", namespace, plural,
                                                               name)
            except ApiException as error:
                if error.status != 404:
                    raise
            status = obj.get("status") or {}
            conditions = status.get("conditions") or ()
            if (any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
                    and status.get("observedGeneration") == obj["metadata"]["generation"]
                    and (plural != "triggers" or self._dispatching(obj))):
                return obj
            if time.monotonic() > deadline:
                raise TimeoutError(f"{plural} {namespace}/{name} not Ready within "
                                   f"{timeout:.0f}s; conditions: {list(conditions)}")
            time.sleep(0.1)

    def _subscription(self, trigger: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        """The Trigger's Subscription to its Broker's channel, once there is exactly one."""
        subscriptions = self.custom.list_namespaced_custom_object(
            MESSAGING, "v1", trigger["metadata"]["namespace"], "subscriptions")["items"]
        owned = [s for s in subscriptions if any(
            o["uid"] == trigger["metadata"]["uid"]
            for o in s["metadata"].get("ownerReferences") or ())]
        return owned[0] if len(owned) == 1 else None

    def _channel(self, subscription: Dict[str, Any]) -> Dict[str, Any]:
        channel: Dict[str, Any] = self.custom.get_namespaced_custom_object(
            MESSAGING, "v1", subscription["metadata"]["namespace"], "inmemorychannels",
            subscription["spec"]["channel"]["name"])
        return channel

    def _dispatching(self, trigger: Dict[str, Any]) -> bool:
        """Whether the dispatcher reports the Trigger's Subscription, as it is now, ready."""
        subscription = self._subscription(trigger)
        if subscription is None:
            return False
        imc = self._channel(subscription)
        return any(s.get("uid") == subscription["metadata"]["uid"]
                   and s.get("observedGeneration") == subscription["metadata"]["generation"]
                   and s.get("ready") == "True"
                   for s in (imc.get("status") or {}).get("subscribers") or ())

    def delete_trigger(self, namespace: str, name: str, timeout: float = 30.0) -> None:
        """Delete a Trigger and wait until its channel no longer fans out to it: until then
        the filter answers 404 for it, and every event through the channel fails (500)."""
        trigger = self.custom.get_namespaced_custom_object(EVENTING_GROUP, "v1", namespace,
                                                           "triggers", name)
        subscription = self._subscription(trigger)
        self.custom.delete_namespaced_custom_object(EVENTING_GROUP, "v1", namespace,
                                                    "triggers", name)
        if subscription is None:
            return
        uid = subscription["metadata"]["uid"]
        deadline = time.monotonic() + timeout
        while any(s.get("uid") == uid for s in
                  (self._channel(subscription).get("spec") or {}).get("subscribers") or ()):
            self.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"trigger {namespace}/{name}'s subscription still in its "
                                   f"channel {timeout:.0f}s after the Trigger was deleted")
            time.sleep(0.1)

    def set_log_level(self, component: str, level: str) -> None:
        """Change a component's log level in ``config-logging`` (each process watches it)."""
        client.CoreV1Api(self.cluster.apiserver.api_client).patch_namespaced_config_map(
            "config-logging", SYSTEM_NAMESPACE, {"data": {f"loglevel.{component}": level}})

    def check_alive(self) -> None:
        for running in self.pods.values():
            if not running.process.alive():
                raise RuntimeError(
                    f"Knative's {running.name} exited with code "
                    f"{running.process.popen.returncode}; its last log lines:\n"
                    f"{running.process.log_tail()}")

    def stop(self) -> None:
        # The InMemoryChannel controller drains its webhook for ~45 s on SIGTERM.
        for running in reversed(list(self.pods.values())):
            running.stop(timeout=2.0)


def start_eventing(workdir: Path, cluster: Cluster, network: Network,
                   deployments: Sequence[str] = DEPLOYMENTS) -> Eventing:
    """Install the release on ``cluster`` and start its processes; returns once each
    passes its readiness probe."""
    tree = peers.source_dir("knative-eventing")
    api = cluster.apiserver.api_client
    kube = Kube(cluster.apiserver, workdir, namespace=SYSTEM_NAMESPACE)
    objects = release_objects(tree)
    kube.apply_objects(objects)
    eventing = Eventing(cluster, network, kube)
    apps = client.AppsV1Api(api)
    port = int(cluster.apiserver.host.rsplit(":", 1)[1])
    argv = _program(tree)
    try:
        for name in deployments:
            selector = apps.read_namespaced_deployment(name, SYSTEM_NAMESPACE).spec.selector
            labels = ",".join(f"{k}={v}" for k, v in selector.match_labels.items())
            (pod,) = wait_running(api, SYSTEM_NAMESPACE, labels)
            eventing.pods[name] = run_container(
                api, network, pod, argv, workdir / name,
                extra_env={"KUBECONFIG": str(cluster.apiserver.kubeconfig)},
                reach_loopback=[port],
            )
    except BaseException:
        eventing.stop()
        raise
    return eventing
