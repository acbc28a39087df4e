"""Kubeless 1.0.8 itself: the ``kubeless`` CLI and the ``function-controller``, built from
``../shared/peers/kubeless-1.0.8.tar.gz``, and what its manifests install.

:func:`release_objects` reads the release's ``kubeless-non-rbac.jsonnet`` and
``kubeless.jsonnet``: the Function CRD, the ``kubeless-config`` ConfigMap, the controller's
ServiceAccount, ClusterRole and binding. Those files import ksonnet-lib
(``ksonnet.beta.1/k.libsonnet``), which neither the archive nor any reachable registry has,
so no jsonnet evaluator could run them here; the objects are literal jsonnet in them, and are
read as such (each ``configMap.data({...})``, each CRD's ``spec``, ``controller_roles``),
with ``runtime-images`` being what the release concatenates, the runtimes' own jsonnet (the
python runtime's ``python.jsonnet``). Two API versions they name are gone from Kubernetes:
the CRD (``apiextensions.k8s.io/v1beta1``, removed in 1.22) is installed as ``v1`` with the
same group, names and scope, and RBAC ``v1beta1`` as ``v1``.

The controller cannot run on the test bed's Kubernetes (1.37): at start it reads its CRD
through ``apiextensions.k8s.io/v1beta1`` and stops (``level=fatal msg="Unable to read the
configmap: Error while fetching config location: the server could not find the requested
resource"``). :func:`start_controller` runs it in-cluster as its Deployment would (token, CA
and namespace at ``/var/run/secrets/kubernetes.io/serviceaccount`` in a private root,
``KUBERNETES_SERVICE_HOST``/``PORT``, its env from the jsonnet) so a test pins that.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import urllib.parse
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence

import yaml

from tests.testbed import kubeless_runtime, peers, private_root, procs
from tests.testbed.pods import resolve_env

PEER = "kubeless"
NAMESPACE = "kubeless"
ACCOUNT = "controller-acct"
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
    found = re.findall(r'metadata: objectMeta\.name\("([^"]+)"\),\s*spec: (\{[^\n]*\}),', text)
    crds = []
    for name, spec_text in found:
        spec = yaml.safe_load(spec_text)
        crds.append({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": name},
            "spec": {"group": spec["group"], "scope": spec["scope"], "names": spec["names"],
                     "versions": [{"name": spec["version"], "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": {
                                       "type": "object",
                                       "x-kubernetes-preserve-unknown-fields": True}}}]}})
    return crds


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
    """Namespace, CRDs, kubeless-config, the controller's account and RBAC, in order."""
    non_rbac = (tree() / "kubeless-non-rbac.jsonnet").read_text(encoding="utf-8")
    rbac = (tree() / "kubeless.jsonnet").read_text(encoding="utf-8")
    rules = _literal(rbac, r"local controller_roles = (\[.*?\n\]);")
    role = "kubeless-controller-deployer"
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        *_crds(non_rbac),
        _config(non_rbac),
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": ACCOUNT, "namespace": NAMESPACE}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": role}, "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": role},
         "subjects": [{"kind": "ServiceAccount", "namespace": NAMESPACE, "name": ACCOUNT}],
         "roleRef": {"kind": "ClusterRole", "apiGroup": "rbac.authorization.k8s.io",
                     "name": role}},
    ]


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


def start_controller(workdir: Path, api: Any, apiserver_host: str, token: str, ca_file: Path,
                     ) -> procs.Process:
    """The function-controller as its Deployment runs it: in-cluster login from the mounted
    ServiceAccount files, its env resolved from ``kubeless-config`` and the downward API."""
    account = workdir / "serviceaccount"
    private_root.secret_files(account, {"token": token, "ca.crt": ca_file.read_text(),
                                        "namespace": NAMESPACE})
    pod = {"metadata": {"name": "kubeless-controller-manager", "namespace": NAMESPACE}}
    env: Mapping[str, str] = resolve_env(api, pod, {"env": controller_env()})
    address = urllib.parse.urlsplit(apiserver_host)
    argv = private_root.wrap([str(peers.binary("function-controller"))], workdir,
                             {"/var/run/secrets/kubernetes.io/serviceaccount": account})
    return procs.start("kubeless-function-controller", argv, workdir / "controller.log",
                       env={"PATH": "/usr/bin:/bin", **env,
                            "KUBERNETES_SERVICE_HOST": str(address.hostname),
                            "KUBERNETES_SERVICE_PORT": str(address.port)})
