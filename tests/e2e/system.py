"""The seed's system, deployed as the README tells users to, on the test bed's cluster:
Falcosidekick -> Knative Broker -> Trigger -> the function on its Knative runtime.

- The function's namespace, ServiceAccount, ClusterRole and policy come from ``deploy/``;
  its token Secret is made as the README says.
- The Broker ``default`` is created in the function's namespace, as a user would.
- The function is func's host build of this repository served by func-python
  (``tests.testbed.knative_func``), with the environment and the policy volume ``func.yaml``
  gives it (the ConfigMap at ``/etc/falco-responder`` in a private root), logged in as
  ``deploy/rbac``'s ServiceAccount, on a network host answering to the address of the
  Knative Service ``func deploy`` makes.
- Knative Serving is not run (it needs its own controllers, webhook and an ingress layer):
  its ``Service`` CRD is installed from the knative.dev/serving release, the Service object
  is created from ``func.yaml`` as func's Knative deployer would, and the test bed writes the
  status Serving would publish (its address). Everything else on the path is the real thing.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import yaml
from kubernetes import client

from tests.testbed import knative_func, peers, private_root, procs
from tests.testbed.cluster import Cluster
from tests.testbed.knative_eventing import EVENTING_GROUP, Eventing
from tests.testbed.kube import Kube
from tests.testbed.netns import Host, Network
from tests.testbed.pods import service_names

REPO = peers.REPO
NAMESPACE = "falco-responder"
NAME = "falco-responder"
SERVING_GROUP = "serving.knative.dev"
FIXTURES = REPO.parent / "shared" / "fixtures"
SHELL_ALERT = FIXTURES / "falco" / "terminal_shell_in_container.falco-0.37-ovh-k8s.json"


@dataclass
class Responder:
    """The deployed function: where it runs, how it logs in, what it logged."""

    kube: Kube
    host: Host
    process: procs.Process
    token: str
    apiserver_port: int

    @contextlib.contextmanager
    def cut_off(self) -> Iterator[None]:
        """Meanwhile the function cannot reach the API server (a network partition)."""
        self.host.stop_reaching(self.apiserver_port)
        try:
            yield
        finally:
            self.host.reach_loopback(self.apiserver_port)

    def decisions(self) -> List[Dict[str, Any]]:
        """Every per-alert JSON line the function has written so far."""
        text = self.process.log_path.read_text(encoding="utf-8", errors="replace")
        return [json.loads(line) for line in text.splitlines()
                if line.startswith('{"status":')]


def func_yaml() -> Dict[str, Any]:
    return dict(yaml.safe_load((REPO / "func.yaml").read_text(encoding="utf-8")))


def func_volumes(func: Dict[str, Any], core: Any, namespace: str,
                 folder: Path) -> Dict[str, Path]:
    """``run.volumes``: each ConfigMap written out as the kubelet writes a volume, to be
    mounted at its path in the function's private root."""
    volumes: Dict[str, Path] = {}
    for i, volume in enumerate(func["run"].get("volumes") or ()):
        data = core.read_namespaced_config_map(volume["configMap"], namespace).data or {}
        volumes[volume["path"]] = private_root.secret_files(folder / f"volume-{i}", data)
    return volumes


def resolve_func_env(func: Dict[str, Any], core: Any, namespace: str) -> Dict[str, str]:
    """``run.envs`` as the deployed container sees them: ``{{ secret:NAME:KEY }}`` and
    ``{{ configMap:NAME:KEY }}`` read from the cluster."""
    env: Dict[str, str] = {}
    for entry in func["run"].get("envs") or ():
        value = str(entry["value"])
        reference = re.fullmatch(r"\{\{\s*(secret|configMap):(\S+?):(\S+?)\s*\}\}", value)
        if reference:
            kind, name, key = reference.groups()
            if kind == "secret":
                value = base64.b64decode(core.read_namespaced_secret(name, namespace)
                                         .data[key]).decode()
            else:
                value = core.read_namespaced_config_map(name, namespace).data[key]
        env[entry["name"]] = value
    return env


def knative_service(func: Dict[str, Any]) -> Dict[str, Any]:
    """The Knative Service func's Knative deployer makes from func.yaml (the parts it sets
    that matter here: name, namespace, annotations, ServiceAccount, scale)."""
    deploy = func["deploy"]
    return {
        "apiVersion": f"{SERVING_GROUP}/v1", "kind": "Service",
        "metadata": {"name": func["name"], "namespace": deploy["namespace"],
                     "labels": {"function.knative.dev/name": func["name"]}},
        "spec": {"template": {
            "metadata": {"annotations": dict(deploy.get("annotations") or {})},
            "spec": {"serviceAccountName": deploy["serviceAccountName"],
                     "containers": [{"image": f"example.invalid/{func['name']}:test"}]}}},
    }


def func_triggers(func: Dict[str, Any], ksvc: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The Triggers `func deploy` makes from ``deploy.subscriptions``, as its Knative
    deployer's createTriggers does (knative/func pkg/knative/deployer.go): one per
    subscription, named ``<service>-function-trigger-<i>``, owned by and pointing at the
    Knative Service."""
    meta = ksvc["metadata"]
    return [{
        "apiVersion": f"{EVENTING_GROUP}/v1", "kind": "Trigger",
        "metadata": {"name": f"{meta['name']}-function-trigger-{i}",
                     "namespace": meta["namespace"],
                     "ownerReferences": [{"apiVersion": ksvc["apiVersion"], "kind": "Service",
                                          "name": meta["name"], "uid": meta["uid"]}]},
        "spec": {"broker": sub["source"],
                 "subscriber": {"ref": {"apiVersion": ksvc["apiVersion"], "kind": "Service",
                                        "name": meta["name"]}},
                 "filter": {"attributes": dict(sub.get("filters") or {})}},
    } for i, sub in enumerate(func["deploy"].get("subscriptions") or ())]


def _publish_serving_status(kube: Kube, ksvc: Dict[str, Any]) -> Dict[str, Any]:
    """What Knative Serving's reconciler would write once the revision is ready (Serving is
    not run: see the module docstring)."""
    meta = ksvc["metadata"]
    url = f"http://{service_names(meta['name'], meta['namespace'])[0]}"
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    status = {"observedGeneration": 1, "url": url, "address": {"url": url},
              "conditions": [{"type": t, "status": "True", "lastTransitionTime": now}
                             for t in ("ConfigurationsReady", "Ready", "RoutesReady")]}
    custom = client.CustomObjectsApi(kube.api_client)
    return dict(custom.patch_namespaced_custom_object_status(
        SERVING_GROUP, "v1", meta["namespace"], "services", meta["name"],
        {"status": status}))


def deploy_responder(cluster: Cluster, eventing: Eventing, network: Network,
                     workdir: Path, policy: Optional[str] = None) -> Responder:
    """The function deployed as the README says: deploy/rbac, the policy ConfigMap (with
    ``policy`` instead of the shipped one when given), the token Secret, the Broker
    ``default``, the Knative Service from func.yaml, and func's build of the function
    serving on a host that answers to that Service's address."""
    kube = Kube(cluster.apiserver, workdir, namespace=NAMESPACE)
    for manifest in sorted((REPO / "deploy" / "rbac").glob("*.yaml")):
        kube.apply_manifest(manifest)
    configmap = yaml.safe_load((REPO / "deploy" / "policy-configmap.yaml").read_text())
    if policy is not None:
        configmap["data"]["policy.yaml"] = policy
    kube.apply_objects([configmap])
    token = secrets.token_hex(24)
    kube.core.create_namespaced_secret(NAMESPACE, client.V1Secret(
        metadata=client.V1ObjectMeta(name="falco-responder-token"),
        string_data={"token": token}))
    eventing.create_broker(NAMESPACE)

    func = func_yaml()
    kube.apply_manifest(peers.installed_file(
        "knative-serving-crds", "config/core/300-resources/service.yaml"))
    (ksvc,) = kube.apply_objects([knative_service(func)])
    _publish_serving_status(kube, ksvc)

    host = network.host(NAME, service_names(NAME, NAMESPACE))
    port = int(cluster.apiserver.host.rsplit(":", 1)[1])
    host.reach_loopback(port)
    host.forward(80, 8080)  # the Knative Service's port 80 to the container's 8080
    env = resolve_func_env(func, kube.core, NAMESPACE)
    env["KUBECONFIG"] = str(kube.token_kubeconfig(func["deploy"]["serviceAccountName"],
                                                  NAMESPACE, expiration_seconds=24 * 3600))
    volumes = func_volumes(func, kube.core, NAMESPACE, workdir / "volumes")
    process = knative_func.start(workdir / "function", env, host, volumes=volumes)
    return Responder(kube, host, process, token, port)


def shipped_trigger_manifest() -> Dict[str, Any]:
    """deploy/knative/trigger.yaml's Trigger, as shipped."""
    return dict(next(yaml.safe_load_all((REPO / "deploy" / "knative" / "trigger.yaml")
                                        .read_text(encoding="utf-8"))))


def shell_alert(namespace: str, pod: str) -> Dict[str, Any]:
    """Falco's own "Terminal shell in container" alert (the fixture as Falco emits it) for
    that pod, timed now."""
    body = json.loads(SHELL_ALERT.read_text(encoding="utf-8"))
    # The stale-target guard skips pods created in the alert's own second.
    now = time.time() + 1
    body["time"] = time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime(now))
    body["output_fields"].update({"k8s.ns.name": namespace, "k8s.pod.name": pod,
                                  "evt.time": int(now * 1e9)})
    return dict(body)


def sidekick_config(token: str) -> Dict[str, Any]:
    """Falcosidekick's settings exactly as deploy/falcosidekick/values-knative.yaml gives
    them, with the Secret's token in place of its CHANGE-ME."""
    values = yaml.safe_load((REPO / "deploy" / "falcosidekick" / "values-knative.yaml")
                            .read_text(encoding="utf-8"))
    config = dict(values["falcosidekick"]["config"])
    extensions = config["cloudevents"].get("extensions") or {}
    config["cloudevents"] = {**config["cloudevents"],
                             "extensions": {k: token if v == "CHANGE-ME" else v
                                            for k, v in extensions.items()}}
    return config
