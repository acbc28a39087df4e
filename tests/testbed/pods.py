"""Run a pod's container as a local process, as a kubelet would, without the container.

kwok makes pods Running with an IP but runs nothing. Where a test needs what a pod *does*
(Knative Eventing's controllers and data plane, a Kubeless function's runtime), the test bed
reads the pod back from the API server (or a Deployment's pod template, where no scheduler
runs) and starts its container's program here:

- on a network host whose address is the pod's IP (a free one for a pod without), so the
  Endpoints the real controllers publish are where the program listens;
- with the names of every Service selecting the pod resolving to it, and each Service port
  forwarded to its target port, as cluster DNS and kube-proxy would;
- with the container's environment resolved the way the kubelet resolves it (literal
  values with ``$(VAR)`` expanded, ``fieldRef``, ``resourceFieldRef``,
  ``configMapKeyRef``/``secretKeyRef``, ``envFrom``) over what the image and the node give
  (``base_env``: the image's ENV, :func:`in_cluster`'s ServiceAccount login), plus what the
  caller adds (``extra_env``: a kubeconfig, where the program runs without an account);
- ready when its readiness probe (HTTP GET or TCP) passes, else its liveness probe (the
  kubelet would call it ready at start, but a test wants it serving), probed from inside
  its host.

The program itself is the caller's choice (an image names no local binary): ``argv`` maps the
container to a command line.
"""

from __future__ import annotations

import base64
import math
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from kubernetes import client

from tests.testbed import private_root, procs
from tests.testbed.netns import Host, Network

Obj = Dict[str, Any]
KUBELET_VERSION = "1.37"
ACCOUNT_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


@dataclass(frozen=True)
class InCluster:
    """A ServiceAccount's login as the kubelet gives it to a pod's containers: ``files``
    (the token, CA and namespace at :data:`ACCOUNT_MOUNT`, for ``private_root.wrap``),
    ``env`` (``KUBERNETES_SERVICE_HOST``/``PORT``), and the API server's loopback ``port``,
    which the pod's host must reach."""

    files: Dict[str, Path]
    env: Dict[str, str]
    port: int


def in_cluster(folder: Path, token: str, ca_file: Path, namespace: str,
               apiserver_host: str) -> InCluster:
    """The login of a ServiceAccount whose ``token`` was minted for the pod."""
    private_root.secret_files(folder, {"token": token, "namespace": namespace,
                                       "ca.crt": ca_file.read_text(encoding="utf-8")})
    address = urllib.parse.urlsplit(apiserver_host)
    port = int(address.port or 443)
    return InCluster({ACCOUNT_MOUNT: folder},
                     {"KUBERNETES_SERVICE_HOST": str(address.hostname),
                      "KUBERNETES_SERVICE_PORT": str(port)}, port)


@dataclass
class RunningPod:
    """A pod's container running as a local process on ``host`` (address: the pod IP)."""

    pod: Obj
    host: Host
    process: procs.Process

    @property
    def name(self) -> str:
        return str(self.pod["metadata"]["name"])

    def stop(self, timeout: float = 10.0) -> None:
        self.process.stop(timeout)


def wait_running(api: Any, namespace: str, selector: str, count: int = 1,
                 timeout: float = 60.0) -> List[Obj]:
    """The pods matching ``selector`` once ``count`` of them are Running with an IP."""
    core = client.CoreV1Api(api)
    deadline = time.monotonic() + timeout
    while True:
        pods = [api.sanitize_for_serialization(pod) for pod in
                core.list_namespaced_pod(namespace, label_selector=selector).items]
        running = [pod for pod in pods if pod["status"].get("phase") == "Running"
                   and pod["status"].get("podIP")
                   and not pod["metadata"].get("deletionTimestamp")]
        if len(running) >= count:
            return running
        if time.monotonic() > deadline:
            seen = [(p["metadata"]["name"], p["status"].get("phase")) for p in pods]
            raise TimeoutError(f"{count} Running pod(s) with {selector} in {namespace} did not "
                               f"appear within {timeout:.0f}s; seen: {seen}")
        time.sleep(0.1)


def selecting_services(api: Any, pod: Obj) -> List[Obj]:
    """The Services of the pod's namespace whose selector matches the pod's labels."""
    labels = pod["metadata"].get("labels") or {}
    services = client.CoreV1Api(api).list_namespaced_service(pod["metadata"]["namespace"])
    found = []
    for service in services.items:
        selector = service.spec.selector or {}
        if selector and all(labels.get(k) == v for k, v in selector.items()):
            found.append(api.sanitize_for_serialization(service))
    return found


def service_names(name: str, namespace: str) -> List[str]:
    """The DNS names a Service answers to inside the cluster."""
    return [f"{name}.{namespace}.svc.cluster.local", f"{name}.{namespace}.svc",
            f"{name}.{namespace}"]


def _quantity(value: str) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6,
             "G": 1e9, "m": 1e-3}
    for suffix, factor in units.items():
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * factor
    return float(value)


def _field(pod: Obj, path: str) -> str:
    node: Any = pod
    for part in path.split("."):
        node = (node or {}).get(part)
    return "" if node is None else str(node)


# $(NAME) refers to a variable defined before it; $$ is a literal $ (the kubelet's rule).
_REFERENCE = re.compile(r"\$\$|\$\(([^)]+)\)")


def _expand(value: str, env: Mapping[str, str]) -> str:
    return _REFERENCE.sub(lambda m: "$" if m.group(0) == "$$"
                          else env.get(m.group(1), m.group(0)), value)


def container_argv(container: Obj, env: Mapping[str, str]) -> List[str]:
    """The container's own ``command`` + ``args`` with ``$(VAR)`` expanded from its
    resolved ``env``, as the kubelet starts them."""
    return [_expand(word, env) for word in
            [*(container.get("command") or ()), *(container.get("args") or ())]]


def run_as(pod: Obj, container: Obj, reachable: Sequence[str] = ()
           ) -> Optional[private_root.User]:
    """The user the kubelet runs ``container`` as: its ``securityContext`` over the pod's
    (``runAsUser``, ``runAsGroup``, the pod's ``supplementalGroups`` and ``fsGroup``), or None
    for root when neither names one (an image's own ``USER`` is not read). ``reachable``:
    what the process must reach on this machine (its interpreter)."""
    pod_context = pod["spec"].get("securityContext") or {}
    context = {**pod_context, **(container.get("securityContext") or {})}
    if not context.get("runAsUser"):
        return None
    groups = [*(pod_context.get("supplementalGroups") or ())]
    volume_group = fs_group(pod)
    if volume_group is not None:
        groups.append(volume_group)
    return private_root.User(int(context["runAsUser"]), int(context.get("runAsGroup") or 0),
                             tuple(dict.fromkeys(int(g) for g in groups)), tuple(reachable))


def fs_group(pod: Obj) -> Optional[int]:
    """The pod's ``fsGroup``: the group the kubelet gives its volumes."""
    group = (pod["spec"].get("securityContext") or {}).get("fsGroup")
    return None if group is None else int(group)


def resolve_env(api: Any, pod: Obj, container: Obj) -> Dict[str, str]:
    """The container's environment as the kubelet would give it to the process."""
    core = client.CoreV1Api(api)
    namespace = pod["metadata"]["namespace"]

    def data(kind: str, name: str) -> Dict[str, str]:
        if kind == "configMap":
            return dict(core.read_namespaced_config_map(name, namespace).data or {})
        secret = core.read_namespaced_secret(name, namespace).data or {}
        return {k: base64.b64decode(v).decode() for k, v in secret.items()}

    env: Dict[str, str] = {}
    for source in container.get("envFrom") or ():
        for kind in ("configMap", "secret"):
            ref = source.get(f"{kind}Ref")
            if ref:
                prefix = source.get("prefix", "")
                env.update({prefix + k: v for k, v in data(kind, ref["name"]).items()})
    for var in container.get("env") or ():
        if "value" in var or "valueFrom" not in var:
            env[var["name"]] = _expand(var.get("value", ""), env)
            continue
        source = var["valueFrom"]
        if "fieldRef" in source:
            env[var["name"]] = _field(pod, source["fieldRef"]["fieldPath"])
        elif "resourceFieldRef" in source:
            ref = source["resourceFieldRef"]
            kind, resource = ref["resource"].split(".")
            amount = ((container.get("resources") or {}).get(kind) or {}).get(resource)
            divisor = _quantity(str(ref.get("divisor", "1")))
            # No limit: the kubelet gives the node's allocatable; ours is the kwok node's.
            total = _quantity(str(amount)) if amount else _quantity(
                {"cpu": "32", "memory": "256Gi"}[resource])
            env[var["name"]] = str(math.ceil(total / divisor))
        else:
            kind = "configMap" if "configMapKeyRef" in source else "secret"
            ref = source[f"{kind}KeyRef"]
            try:
                env[var["name"]] = data(kind, ref["name"])[ref["key"]]
            except (KeyError, client.ApiException):
                if not ref.get("optional"):
                    raise
    return env


def _probe(host: Host, probe: Obj, container: Obj, ip: str) -> Callable[[], bool]:
    """A check of the probe as the kubelet makes it (an HTTPS probe: the port accepting)."""
    action = probe.get("httpGet") or probe["tcpSocket"]
    port = action["port"]
    if isinstance(port, str):  # a named container port
        port = next(p["containerPort"] for p in container.get("ports") or ()
                    if p.get("name") == port)
    if "httpGet" in probe and action.get("scheme", "HTTP") == "HTTP":
        # Servers tell probes from traffic by the kubelet's User-Agent (Knative's do).
        headers = {"User-Agent": f"kube-probe/{KUBELET_VERSION}",
                   **{h["name"]: h["value"] for h in action.get("httpHeaders") or ()}}
        request = urllib.request.Request(f"http://{ip}:{port}{action.get('path', '/')}",
                                         headers=headers)

        def http_ready() -> bool:
            try:
                with host.entered(), urllib.request.urlopen(request, timeout=1) as answer:
                    return bool(200 <= answer.status < 400)
            except (urllib.error.URLError, OSError):
                return False

        return http_ready
    return lambda: host.connectable(int(port), ip)


def run_container(
    api: Any,
    network: Network,
    pod: Obj,
    argv: Callable[[Obj], Sequence[str]],
    workdir: Path,
    *,
    container: Optional[str] = None,
    base_env: Optional[Mapping[str, str]] = None,
    extra_env: Optional[Mapping[str, str]] = None,
    reach_loopback: Sequence[int] = (),
    cwd: Optional[Path] = None,
    timeout: float = 60.0,
) -> RunningPod:
    """Start one container of ``pod`` (the first unless named) and wait for its probe
    (module docstring: the environment's layers, which probe, the IP)."""
    containers = pod["spec"]["containers"]
    spec = next(c for c in containers if container in (None, c["name"]))
    name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
    names: List[str] = []
    forwards: Dict[int, int] = {}
    for service in selecting_services(api, pod):
        names += service_names(service["metadata"]["name"], namespace)
        for port in service["spec"].get("ports") or ():
            target = port.get("targetPort", port["port"])
            if isinstance(target, str):  # a named container port
                target = next(p["containerPort"] for p in spec.get("ports") or ()
                              if p.get("name") == target)
            if int(target) != int(port["port"]):
                forwards[int(port["port"])] = int(target)
    host = network.host(name, names, ip=(pod.get("status") or {}).get("podIP"))
    ip = host.ip
    for port in reach_loopback:
        host.reach_loopback(port)
    for port, target in forwards.items():
        host.forward(port, target)
    workdir.mkdir(parents=True, exist_ok=True)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(workdir),
           **(base_env or {}), **resolve_env(api, pod, spec), **(extra_env or {})}
    process = procs.start(f"{namespace}/{name}", host.exec_argv(list(argv(spec))),
                          workdir / f"{name}.log", env=env, cwd=cwd or workdir)
    running = RunningPod(pod, host, process)
    kind = "readiness" if spec.get("readinessProbe") else "liveness"
    probe = spec.get(f"{kind}Probe")
    if probe and ("httpGet" in probe or "tcpSocket" in probe):
        procs.wait_until(_probe(host, probe, spec, ip), timeout,
                         f"pod {namespace}/{name} passing its {kind} probe", process,
                         interval=0.1)
    return running
