"""Kubeless 1.0.8 itself: the ``kubeless`` CLI and the ``function-controller``, built from
``../shared/peers/kubeless-1.0.8.tar.gz``, and what its manifests install.

:func:`release_objects` reads the release's ``kubeless-non-rbac.jsonnet`` and
``kubeless.jsonnet``: the Function CRD, the ``kubeless-config`` ConfigMap, the controller's
ServiceAccount, ClusterRole and binding, with the API versions they name. Those files import
ksonnet-lib (``ksonnet.beta.1/k.libsonnet``), which neither the archive nor any reachable
registry has, so no jsonnet evaluator could run them here; the objects are literal jsonnet in
them, and are read as such (each ``configMap.data({...})``, each CRD, ``controller_roles``),
with ``runtime-images`` being what the release concatenates, the runtimes' own jsonnet (the
python runtime's ``python.jsonnet``).

Those versions (``apiextensions.k8s.io/v1beta1``, RBAC ``v1beta1``) and the controller's own
reads of its CRD through ``v1beta1`` need Kubernetes 1.21 or older: the tests run Kubeless on
the test bed's 1.21 API server (peer ``kubernetes-1.21``). :func:`start_controller` runs the
controller in-cluster as its Deployment would; :func:`prepare_pod` runs the init containers
of the pod of the Deployment it makes from a Function, and :func:`start_runtime` its runtime
container.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence

import yaml
from kubernetes import client

from tests.testbed import kubeless_runtime, peers, private_root, procs
from tests.testbed.kube import Kube, or_none
from tests.testbed.netns import Network
from tests.testbed.pods import (
    InCluster,
    RunningPod,
    container_argv,
    fs_group,
    in_cluster,
    resolve_env,
    run_as,
    run_container,
)

PEER = "kubeless"
NAMESPACE = "kubeless"
ACCOUNT = "controller-acct"
#: The Function resource: group, version, plural.
FUNCTIONS = ("kubeless.io", "v1beta1", "functions")
Obj = Dict[str, Any]


def tree() -> Path:
    return peers.source_dir(PEER)


def _literal(text: str, pattern: str) -> Any:
    """The jsonnet literal matched by ``pattern``'s group (YAML reads jsonnet literals)."""
    match = re.search(pattern, text, re.DOTALL)
    if match is None:
        raise RuntimeError(f"{pattern!r} not found in the Kubeless manifests")
    return yaml.safe_load(match.group(1))


def _crds(text: str) -> List[Obj]:
    found = re.findall(r'apiVersion: "([^"]+)",\s*kind: "CustomResourceDefinition",\s*'
                       r'metadata: objectMeta\.name\("([^"]+)"\),\s*spec: (\{[^\n]*\}),', text)
    if not found:
        raise RuntimeError("no CustomResourceDefinition in the Kubeless manifests")
    return [{"apiVersion": version, "kind": "CustomResourceDefinition",
             "metadata": {"name": name}, "spec": yaml.safe_load(spec)}
            for version, name, spec in found]


def runtime_images() -> List[Any]:
    """What the release's ``runtimes.jsonnet`` holds for the runtimes at hand: python's."""
    return [yaml.safe_load((kubeless_runtime.folder() / "python.jsonnet").read_text())]


def _config(text: str) -> Obj:
    # std.toString: a string stays itself, anything else becomes its JSON.
    deployment = re.search(r"local deploymentConfig = '([^']*)';", text)
    if deployment is None:
        raise RuntimeError("no deploymentConfig in the Kubeless manifests")
    locals_ = {"deploymentConfig": deployment.group(1),
               "runtimesSrc": json.dumps(runtime_images())}
    data: Dict[str, str] = {}
    for call in re.findall(r"configMap\.data\((\{.*?\})\)", text):
        for name, value in locals_.items():
            call = call.replace(f"std.toString({name})", json.dumps(value))
        data.update(yaml.safe_load(call))
    named = re.search(r'configMap\.default\("([^"]+)", namespace\)', text)
    if named is None:
        raise RuntimeError("no configMap.default(NAME, namespace) in the Kubeless manifests")
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": named.group(1), "namespace": NAMESPACE}, "data": data}


def release_objects() -> List[Obj]:
    """Namespace, CRDs, kubeless-config, the controller's account and RBAC, in order, with
    the API versions the files give them."""
    non_rbac = (tree() / "kubeless-non-rbac.jsonnet").read_text(encoding="utf-8")
    rbac = (tree() / "kubeless.jsonnet").read_text(encoding="utf-8")
    rules = _literal(rbac, r"local controller_roles = (\[.*?\n\]);")
    role_version = _literal(rbac, r'local clusterRole\(name, rules\) = \{\s*apiVersion: ("[^"]+")')
    binding_version = _literal(
        rbac, r'local clusterRoleBinding\(name, role, subjects\) = \{\s*apiVersion: ("[^"]+")')
    role = "kubeless-controller-deployer"
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        *_crds(non_rbac),
        _config(non_rbac),
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": ACCOUNT, "namespace": NAMESPACE}},
        {"apiVersion": role_version, "kind": "ClusterRole",
         "metadata": {"name": role}, "rules": rules},
        {"apiVersion": binding_version, "kind": "ClusterRoleBinding",
         "metadata": {"name": role},
         "subjects": [{"kind": "ServiceAccount", "namespace": NAMESPACE, "name": ACCOUNT}],
         "roleRef": {"kind": "ClusterRole", "apiGroup": "rbac.authorization.k8s.io",
                     "name": role}},
    ]


def install(kube: Kube) -> None:
    """:func:`release_objects` applied, returning once the Function CRD serves."""
    kube.apply_objects(release_objects())
    custom = client.CustomObjectsApi(kube.api_client)

    def serving() -> bool:
        try:
            custom.list_cluster_custom_object(*FUNCTIONS)
            return True
        except client.ApiException:
            return False

    procs.wait_until(serving, 30, "the Function CRD serving")


def controller_env() -> List[Obj]:
    """The controller container's env, as the jsonnet gives it."""
    text = (tree() / "kubeless-non-rbac.jsonnet").read_text(encoding="utf-8")
    env: List[Obj] = _literal(text, r"local controllerEnv = (\[.*?\n\]);")
    return env


def cli(args: Sequence[str], kubeconfig: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The ``kubeless`` CLI with ``args`` (a kubeconfig is all it needs)."""
    return subprocess.run([str(peers.binary("kubeless")), *args], cwd=str(cwd),
                          capture_output=True, text=True, timeout=120,
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                               "HOME": str(cwd), "KUBECONFIG": str(kubeconfig)})


def documented_deploy(readme: Path) -> List[str]:
    """The ``kubeless function deploy ...`` command of ``readme``, as its words."""
    text = readme.read_text(encoding="utf-8").replace("\\\n", " ")
    (line,) = [line for line in text.splitlines()
               if line.strip().startswith("kubeless function deploy ")]
    return shlex.split(line.split("#")[0])


@contextlib.contextmanager
def deploy_as_documented(readme: Path, kube: Kube, controller: procs.Process, cwd: Path
                         ) -> Iterator[Obj]:
    """``readme``'s ``kubeless function deploy ...`` run as written from ``cwd`` with the
    admin's kubeconfig; yields the Function it created (see :func:`function_lifetime`)."""
    words = documented_deploy(readme)
    if words[:3] != ["kubeless", "function", "deploy"]:
        raise RuntimeError(f"not a deploy command: {words}")
    done = cli(words[1:], kube.server.kubeconfig, cwd)
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(words)} failed: {done.stderr}")
    namespace = words[words.index("--namespace") + 1] if "--namespace" in words else "default"
    with function_lifetime(kube.api_client, controller, words[3], namespace) as function:
        yield function


def start_controller(workdir: Path, api: Any, login: InCluster) -> procs.Process:
    """The function-controller as its Deployment runs it: in-cluster ``login`` (its
    ServiceAccount's), its env resolved from ``kubeless-config`` and the downward API."""
    pod = {"metadata": {"name": "kubeless-controller-manager", "namespace": NAMESPACE}}
    env: Mapping[str, str] = resolve_env(api, pod, {"env": controller_env()})
    argv = private_root.wrap([str(peers.binary("function-controller"))], workdir, login.files)
    return procs.start("kubeless-function-controller", argv, workdir / "controller.log",
                       env={"PATH": "/usr/bin:/bin", **env, **login.env})


def made_deployment(api: Any, name: str, namespace: str, controller: procs.Process,
                    timeout: float = 30.0) -> Obj:
    """The Deployment ``controller`` made from Function ``name``, once the Service and
    ConfigMap it makes with it exist too; fails with its log if it exits first."""
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    made: List[Obj] = []

    def all_made() -> bool:
        deployment = or_none(lambda: apps.read_namespaced_deployment(name, namespace))
        if (deployment is None
                or or_none(lambda: core.read_namespaced_config_map(name, namespace)) is None
                or or_none(lambda: core.read_namespaced_service(name, namespace)) is None):
            return False
        made.append(api.sanitize_for_serialization(deployment))
        return True

    procs.wait_until(all_made, timeout, f"the controller making {namespace}/{name}'s "
                     f"Deployment, Service and ConfigMap", controller)
    return made[-1]


def _image_path(image: str) -> str:
    """PATH standing for an init container's image: ``python:3.8`` is that Python (its
    ``pip``); Kubeless's ``unzip`` image is the machine's sh, base64, sha256sum and unzip."""
    system = "/usr/local/bin:/usr/bin:/bin"
    if image.split("@")[0].split(":")[0] == "python":
        return f"{Path(kubeless_runtime.pip_python()).parent}:{system}"
    return system


def _volumes(api: Any, pod: Obj, workdir: Path) -> Dict[str, Path]:
    """Each volume of the pod as a folder: an emptyDir empty, a ConfigMap one file per key
    (as the kubelet projects it when no ``items`` are picked)."""
    core = client.CoreV1Api(api)
    group = fs_group(pod)
    folders: Dict[str, Path] = {}
    for volume in pod["spec"].get("volumes") or ():
        folder = workdir / "volumes" / volume["name"]
        folder.mkdir(parents=True)
        if "configMap" in volume and not volume["configMap"].get("items"):
            config = core.read_namespaced_config_map(volume["configMap"]["name"],
                                                     pod["metadata"]["namespace"])
            for key, text in (config.data or {}).items():
                (folder / key).write_text(text, encoding="utf-8")
            for key, data in (config.binary_data or {}).items():
                (folder / key).write_bytes(base64.b64decode(data))
        elif "emptyDir" in volume:
            # The kubelet makes an emptyDir open to all; with an fsGroup, that group's and
            # setgid, so what the pod's user writes there stays the pod's group's.
            folder.chmod(0o777)
            if group is not None:
                os.chown(folder, -1, group)
                folder.chmod(0o2777)
        else:
            raise RuntimeError(f"volume {volume['name']}: only emptyDir and whole-configMap "
                               f"volumes are made here: {volume}")
        folders[volume["name"]] = folder
    return folders


def _mounts(container: Obj, volumes: Mapping[str, Path], tmp: Path) -> Dict[str, Path]:
    """The container's volume mounts, and a ``/tmp`` of its own."""
    return {"/tmp": private_root.image_tmp(tmp), **{
        m["mountPath"]: volumes[m["name"]] for m in container.get("volumeMounts") or ()}}


def _run_init(api: Any, pod: Obj, init: Obj, volumes: Mapping[str, Path],
              workdir: Path) -> None:
    """One init container's own command, to completion; raises with its output if it fails."""
    folder = workdir / init["name"]
    env = resolve_env(api, pod, init)
    argv = private_root.wrap(container_argv(init, env), folder,
                             _mounts(init, volumes, folder / "tmp"),
                             cwd=init.get("workingDir", "/"),
                             user=run_as(pod, init, reachable=[kubeless_runtime.pip_python()]))
    # HOME: the images' (/root, or none for the pod's user) would be the machine's here;
    # pip's cache goes to the container's own /tmp instead.
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, env={
        "PATH": _image_path(init["image"]), "HOME": "/tmp", **env})
    if done.returncode != 0:
        raise RuntimeError(f"init container {init['name']} failed ({done.returncode}):\n"
                           f"{done.stdout[-2000:]}{done.stderr[-3000:]}")


@dataclass(frozen=True)
class PreparedPod:
    """A Deployment's pod once its init containers are done: its volumes as folders (the
    function unpacked and its dependencies installed in them), ready for its runtime
    container, which may start on them more than once."""

    pod: Obj
    volumes: Mapping[str, Path]

    @property
    def runtime(self) -> Obj:
        (container,) = self.pod["spec"]["containers"]
        return dict(container)

    def volume(self, mount_path: str) -> Path:
        """The folder the runtime container sees at ``mount_path``."""
        (name,) = [m["name"] for m in self.runtime.get("volumeMounts") or ()
                   if m["mountPath"] == mount_path]
        return self.volumes[name]


def prepare_pod(api: Any, deployment: Obj, workdir: Path) -> PreparedPod:
    """The Deployment's pod as the kubelet starts it: its volumes made, then each init
    container's command run in turn in a private root with its mounts and a ``/tmp`` of its
    own."""
    template = deployment["spec"]["template"]
    pod = {"metadata": {"name": f"{deployment['metadata']['name']}-0",
                        "namespace": deployment["metadata"]["namespace"],
                        "labels": template["metadata"].get("labels") or {}},
           "spec": template["spec"], "status": {}}
    volumes = _volumes(api, pod, workdir)
    for init in pod["spec"].get("initContainers") or ():
        _run_init(api, pod, init, volumes, workdir)
    return PreparedPod(pod, volumes)


def start_runtime(api: Any, network: Network, prepared: PreparedPod, workdir: Path,
                  login: InCluster, env: Optional[Mapping[str, str]] = None,
                  extra_files: Optional[Mapping[str, Path]] = None) -> RunningPod:
    """The prepared pod's runtime container with its image's command, its mounts and its
    ServiceAccount's ``login``, on a host answering to the Service's names, returned once its
    liveness probe passes. ``env`` is set over the container's own, as
    ``kubectl set env`` would, and ``extra_files`` (path in the container -> the test's
    file) are mounted as a volume added to the pod would be."""
    runtime = prepared.runtime
    if runtime.get("command") or runtime.get("args"):
        raise RuntimeError("the runtime container overrides its image's command: "
                           f"{runtime.get('command')} {runtime.get('args')}")
    files = {**_mounts(runtime, prepared.volumes, workdir / "tmp"), **login.files,
             kubeless_runtime.SERVER: kubeless_runtime.server_file(), **(extra_files or {})}
    python = kubeless_runtime.runtime_python()
    # The image's WORKDIR is /.
    argv = private_root.wrap(kubeless_runtime.command(python), workdir, files,
                             cwd=runtime.get("workingDir", "/"),
                             user=run_as(prepared.pod, runtime, reachable=[str(python)]))
    return run_container(api, network, prepared.pod, lambda _: argv, workdir,
                         base_env={**kubeless_runtime.IMAGE_ENV, **login.env},
                         extra_env=env, reach_loopback=[login.port])


def login(kube: Kube, account: str, namespace: str, folder: Path) -> InCluster:
    """ServiceAccount ``namespace/account``'s in-cluster login on ``kube``'s API server, its
    files in ``folder``."""
    return in_cluster(folder, kube.token(account, namespace), Path(kube.server.ca_file),
                      namespace, kube.server.host)


def pod_login(kube: Kube, prepared: PreparedPod, folder: Path) -> InCluster:
    """The login the kubelet gives the pod: a token of its ServiceAccount (``default`` when
    it names none)."""
    return login(kube, prepared.pod["spec"].get("serviceAccountName") or "default",
                 prepared.pod["metadata"]["namespace"], folder)


@contextlib.contextmanager
def function_lifetime(api: Any, controller: procs.Process, name: str, namespace: str
                      ) -> Iterator[Obj]:
    """Function ``name`` as just created; once the caller is done, gone with what the
    controller made from it."""
    custom = client.CustomObjectsApi(api)
    try:
        yield dict(custom.get_namespaced_custom_object(*FUNCTIONS[:2], namespace, FUNCTIONS[2],
                                                        name))
    finally:
        try:
            # Once the controller has acted on it, so nothing it makes comes after the cleanup.
            made_deployment(api, name, namespace, controller)
        finally:
            custom.delete_namespaced_custom_object(*FUNCTIONS[:2], namespace, FUNCTIONS[2],
                                                   name)
        # The controller deletes its Service and ConfigMap, then drops its finalizer; its
        # Deployment delete goes to extensions/v1beta1, gone since 1.16, so the Deployment is
        # left to the garbage collector (its owner is the Function).
        procs.wait_until(lambda: _gone(lambda: custom.get_namespaced_custom_object(
            *FUNCTIONS[:2], namespace, FUNCTIONS[2], name)), 30,
            "the controller letting the Function go", controller)
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        if not _gone(lambda: core.read_namespaced_service(name, namespace)):
            raise RuntimeError(f"the controller left Service {namespace}/{name} behind")
        procs.wait_until(lambda: _gone(lambda: apps.read_namespaced_deployment(name, namespace)),
                         60, f"the garbage collector deleting Deployment {namespace}/{name}")


def _gone(read: Callable[[], Any]) -> bool:
    return or_none(read) is None
