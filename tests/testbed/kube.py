"""Helpers that put objects into the bare API server the way a cluster would have them.

A bare kube-apiserver runs no controllers, so everything a controller would have done
(owner chains, status, the ``default`` ServiceAccount, mirror pods) is written here
directly, through the same API and subresources the controllers use.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, TypeVar, Union

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.testbed.apiserver import ApiServer
from tests.testbed.kubeconfig import write_kubeconfig

T = TypeVar("T")

DEFAULT_IMAGE = "docker.io/library/alpine:3.20"
DEFAULT_NODE = "testbed-node"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"

Rule = Mapping[str, Sequence[str]]


def _suffix(length: int = 5) -> str:
    return secrets.token_hex(8)[:length]


@dataclass
class PodFamily:
    """A pod and its owner chain, nearest owner first (e.g. ``[replicaset, deployment]``)."""

    #: ``kubernetes.client.V1Pod`` (typed Any: its fields are all Optional in the stubs).
    pod: Any
    owners: List[Any] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.pod.metadata.name)

    @property
    def namespace(self) -> str:
        return str(self.pod.metadata.namespace)


def owner_reference(obj: Any, controller: bool = True) -> client.V1OwnerReference:
    """An ownerReference to ``obj`` as a controller would set it."""
    return client.V1OwnerReference(
        api_version=obj.api_version, kind=obj.kind, name=obj.metadata.name,
        uid=obj.metadata.uid, controller=controller, block_owner_deletion=True,
    )


def or_none(read: Callable[[], T]) -> Optional[T]:
    """What ``read`` reads from the API server, or None when it answers 404."""
    try:
        return read()
    except ApiException as error:
        if error.status == 404:
            return None
        raise


class Kube:
    """Object factories bound to one namespace (``namespace``) of an ``ApiServer``.

    Every ``create_*`` method takes ``namespace=None`` meaning this helper's namespace.
    """

    def __init__(self, server: ApiServer, workdir: Path, namespace: str = "default") -> None:
        self.server = server
        self.api_client = server.api_client
        self.workdir = workdir
        self.namespace = namespace
        self.core = client.CoreV1Api(self.api_client)
        self.apps = client.AppsV1Api(self.api_client)
        self.rbac = client.RbacAuthorizationV1Api(self.api_client)

    @classmethod
    def in_new_namespace(cls, server: ApiServer, workdir: Path) -> Kube:
        """A helper bound to a namespace made for it (a test's own)."""
        helper = cls(server, workdir)
        helper.namespace = helper.create_namespace()
        return helper

    def _ns(self, namespace: Optional[str]) -> str:
        return namespace or self.namespace

    # -- namespaces and identities ------------------------------------------------------

    def create_namespace(self, name: Optional[str] = None, prefix: str = "t") -> str:
        """Create a namespace (a unique ``prefix-xxxxx`` name by default) and its ``default``
        ServiceAccount, which the missing controller would have made; returns its name."""
        name = name or f"{prefix}-{_suffix(8)}"
        self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        self.ensure_service_account("default", name)
        return name

    def ensure_service_account(self, name: str, namespace: Optional[str] = None) -> None:
        """Create the ServiceAccount unless it exists."""
        try:
            self.create_service_account(name, namespace)
        except ApiException as error:
            if error.status != 409:
                raise

    def create_service_account(
        self, name: str, namespace: Optional[str] = None
    ) -> client.V1ServiceAccount:
        return self.core.create_namespaced_service_account(
            self._ns(namespace),
            client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name)),
        )

    @staticmethod
    def _rules(rules: Iterable[Rule]) -> List[client.V1PolicyRule]:
        return [
            client.V1PolicyRule(
                api_groups=list(rule.get("apiGroups", [""])),
                resources=list(rule.get("resources", [])),
                verbs=list(rule.get("verbs", [])),
                resource_names=list(rule["resourceNames"]) if "resourceNames" in rule else None,
            )
            for rule in rules
        ]

    def create_role(self, name: str, rules: Iterable[Rule],
                    namespace: Optional[str] = None) -> client.V1Role:
        """A Role; each rule is a dict with ``apiGroups`` (default ``[""]``), ``resources``,
        ``verbs`` and optionally ``resourceNames``, as in a manifest."""
        return self.rbac.create_namespaced_role(
            self._ns(namespace),
            client.V1Role(metadata=client.V1ObjectMeta(name=name), rules=self._rules(rules)),
        )

    def create_cluster_role(self, name: str, rules: Iterable[Rule]) -> client.V1ClusterRole:
        return self.rbac.create_cluster_role(
            client.V1ClusterRole(metadata=client.V1ObjectMeta(name=name), rules=self._rules(rules))
        )

    @staticmethod
    def _subject(account: str, namespace: str) -> client.RbacV1Subject:
        return client.RbacV1Subject(kind="ServiceAccount", name=account, namespace=namespace)

    def bind_role(self, role: str, account: str, namespace: Optional[str] = None,
                  account_namespace: Optional[str] = None,
                  cluster_role: bool = False) -> client.V1RoleBinding:
        """RoleBinding in ``namespace`` of Role ``role`` (or ClusterRole if ``cluster_role``)
        to ServiceAccount ``account`` (of ``account_namespace``, default the same)."""
        ns = self._ns(namespace)
        return self.rbac.create_namespaced_role_binding(
            ns,
            client.V1RoleBinding(
                metadata=client.V1ObjectMeta(name=f"{role}-{account}-{_suffix()}"),
                role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io",
                                          kind="ClusterRole" if cluster_role else "Role",
                                          name=role),
                subjects=[self._subject(account, account_namespace or ns)],
            ),
        )

    def bind_cluster_role(self, cluster_role: str, account: str,
                          account_namespace: Optional[str] = None) -> client.V1ClusterRoleBinding:
        """ClusterRoleBinding of ``cluster_role`` to a ServiceAccount."""
        return self.rbac.create_cluster_role_binding(
            client.V1ClusterRoleBinding(
                metadata=client.V1ObjectMeta(name=f"{cluster_role}-{account}-{_suffix()}"),
                role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io",
                                          kind="ClusterRole", name=cluster_role),
                subjects=[self._subject(account, self._ns(account_namespace))],
            )
        )

    def service_account_with_role(self, name: str, rules: Iterable[Rule],
                                  namespace: Optional[str] = None) -> Path:
        """ServiceAccount + Role + RoleBinding in one go; returns a kubeconfig for its token."""
        ns = self._ns(namespace)
        self.create_service_account(name, ns)
        self.create_role(name, rules, ns)
        self.bind_role(name, name, ns)
        return self.token_kubeconfig(name, ns)

    def token(self, account: str, namespace: Optional[str] = None,
              expiration_seconds: int = 3600,
              audiences: Optional[Sequence[str]] = None) -> str:
        """Mint a token for a ServiceAccount with the TokenRequest API."""
        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(
                audiences=list(audiences or [self.server.issuer]),
                expiration_seconds=expiration_seconds,
            )
        )
        answer: Any = self.core.create_namespaced_service_account_token(
            account, self._ns(namespace), request
        )
        return str(answer.status.token)

    def token_kubeconfig(self, account: str, namespace: Optional[str] = None,
                         expiration_seconds: int = 3600) -> Path:
        """A kubeconfig file that logs in as the ServiceAccount, with nothing but its RBAC."""
        ns = self._ns(namespace)
        token = self.token(account, ns, expiration_seconds)
        path = self.workdir / f"{ns}.{account}.{_suffix()}.kubeconfig"
        return write_kubeconfig(path, self.server.host, self.server.ca_file, {"token": token}, ns)

    def apply_manifest(self, source: Union[str, Path],
                       namespace: Optional[str] = None) -> List[Dict[str, Any]]:
        """Server-side apply every object of a YAML file (e.g. the RBAC under deploy/).

        With ``namespace`` namespaced objects are put there; subjects of bindings are not
        rewritten. Returns the applied objects as dicts.
        """
        text = Path(source).read_text(encoding="utf-8")
        return self.apply_objects([d for d in yaml.safe_load_all(text) if d], namespace)

    def apply_objects(self, documents: Iterable[Dict[str, Any]],
                      namespace: Optional[str] = None) -> List[Dict[str, Any]]:
        """Server-side apply each object, in order (see ``apply_manifest``); a CRD is waited
        on until Established, so objects of its kind can follow it."""
        from kubernetes.dynamic import DynamicClient
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        dynamic = DynamicClient(self.api_client)  # type: ignore[no-untyped-call]
        applied: List[Dict[str, Any]] = []
        for doc in documents:
            try:
                resource = dynamic.resources.get(api_version=doc["apiVersion"],
                                                 kind=doc["kind"])
            except ResourceNotFoundError:  # a kind whose CRD came after discovery ran
                dynamic.resources.invalidate_cache()
                resource = dynamic.resources.get(api_version=doc["apiVersion"],
                                                 kind=doc["kind"])
            ns = None
            if resource.namespaced:
                ns = namespace or doc["metadata"].get("namespace") or self.namespace
                doc["metadata"]["namespace"] = ns
            result = resource.server_side_apply(
                body=doc, name=doc["metadata"]["name"], namespace=ns,
                field_manager="testbed", force_conflicts=True,
            )
            applied.append(result.to_dict())
            if doc["kind"] == "CustomResourceDefinition":
                self.wait_established(doc["metadata"]["name"])
        return applied

    def wait_established(self, crd: str, timeout: float = 30.0) -> None:
        """Wait until the CRD's kind is served."""
        extensions = client.ApiextensionsV1Api(self.api_client)
        deadline = time.monotonic() + timeout
        while not any(c.type == "Established" and c.status == "True" for c in
                      extensions.read_custom_resource_definition(crd).status.conditions or ()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRD {crd} not Established within {timeout:.0f}s")
            time.sleep(0.05)

    # -- pods of each kind -----------------------------------------------------------------

    def ensure_node(self, name: str = DEFAULT_NODE) -> client.V1Node:
        """A Node object (no kubelet behind it): what mirror pods and nodeName point at."""
        return or_none(lambda: self.core.read_node(name)) or self.core.create_node(
            client.V1Node(metadata=client.V1ObjectMeta(name=name)))

    @staticmethod
    def _template_spec(image: str, service_account: Optional[str]) -> client.V1PodSpec:
        return client.V1PodSpec(
            containers=[client.V1Container(name="main", image=image,
                                           command=["sleep", "infinity"])],
            service_account_name=service_account,
        )

    def create_pod(
        self,
        name: str,
        namespace: Optional[str] = None,
        *,
        image: str = DEFAULT_IMAGE,
        node_name: Optional[str] = None,
        labels: Optional[Mapping[str, str]] = None,
        annotations: Optional[Mapping[str, str]] = None,
        owners: Sequence[client.V1OwnerReference] = (),
        service_account: Optional[str] = None,
    ) -> Any:
        """Create a pod and return its ``V1Pod``. Without ``node_name`` it stays unbound and
        a delete removes it at once; with ``node_name`` a delete only marks it (see
        docs/testing.md)."""
        spec = self._template_spec(image, service_account)
        spec.node_name = node_name
        pod = client.V1Pod(
            metadata=client.V1ObjectMeta(
                name=name, labels=dict(labels or {}), annotations=dict(annotations or {}),
                owner_references=list(owners) or None,
            ),
            spec=spec,
        )
        return self.core.create_namespaced_pod(self._ns(namespace), pod)

    def create_standalone_pod(self, name: str, namespace: Optional[str] = None,
                              **kwargs: Any) -> PodFamily:
        """A pod with no owner."""
        return PodFamily(self.create_pod(name, namespace, **kwargs))

    def create_deployment_pod(self, name: str, namespace: Optional[str] = None,
                              replicas: int = 1, **kwargs: Any) -> PodFamily:
        """Deployment ``name`` -> ReplicaSet ``name-<hash>`` -> pod ``name-<hash>-<id>``, with
        the status of both owners saying ``replicas`` are ready and available."""
        ns = self._ns(namespace)
        template_hash = _suffix(10)
        labels = {"app": name}
        deployment = self.apps.create_namespaced_deployment(
            ns,
            client.V1Deployment(
                metadata=client.V1ObjectMeta(name=name, labels=labels),
                spec=client.V1DeploymentSpec(
                    replicas=replicas,
                    selector=client.V1LabelSelector(match_labels=labels),
                    template=client.V1PodTemplateSpec(
                        metadata=client.V1ObjectMeta(labels=labels),
                        spec=self._template_spec(kwargs.get("image", DEFAULT_IMAGE), None),
                    ),
                ),
            ),
        )
        rs_name = f"{name}-{template_hash}"
        rs_labels = {**labels, "pod-template-hash": template_hash}
        replicaset = self.apps.create_namespaced_replica_set(
            ns,
            client.V1ReplicaSet(
                metadata=client.V1ObjectMeta(
                    name=rs_name, labels=rs_labels,
                    annotations={"deployment.kubernetes.io/revision": "1"},
                    owner_references=[owner_reference(deployment)],
                ),
                spec=client.V1ReplicaSetSpec(
                    replicas=replicas,
                    selector=client.V1LabelSelector(match_labels=rs_labels),
                    template=client.V1PodTemplateSpec(
                        metadata=client.V1ObjectMeta(labels=rs_labels),
                        spec=self._template_spec(kwargs.get("image", DEFAULT_IMAGE), None),
                    ),
                ),
            ),
        )
        pod = self.create_pod(
            f"{rs_name}-{_suffix()}", ns, labels=rs_labels,
            owners=[owner_reference(replicaset)], **kwargs,
        )
        replicaset = self.set_replicaset_status(rs_name, ns, replicas)
        deployment = self.set_deployment_status(name, ns, replicas)
        return PodFamily(pod, [replicaset, deployment])

    def create_deployment(self, name: str, namespace: Optional[str] = None,
                          replicas: int = 1, image: str = DEFAULT_IMAGE) -> client.V1Deployment:
        """A Deployment as a user creates it: on a cluster whose controllers act, its
        ReplicaSet and pods come from them (``pods.wait_running(..., f"app={name}")``)."""
        labels, template = self._workload(name, image)
        return self.apps.create_namespaced_deployment(self._ns(namespace), client.V1Deployment(
            metadata=client.V1ObjectMeta(name=name, labels=labels),
            spec=client.V1DeploymentSpec(
                replicas=replicas, selector=client.V1LabelSelector(match_labels=labels),
                template=template)))

    def create_statefulset(self, name: str, namespace: Optional[str] = None,
                           replicas: int = 1, image: str = DEFAULT_IMAGE) -> client.V1StatefulSet:
        """A StatefulSet as a user creates it (pods ``name-0``... from its controller)."""
        labels, template = self._workload(name, image)
        return self.apps.create_namespaced_stateful_set(self._ns(namespace), client.V1StatefulSet(
            metadata=client.V1ObjectMeta(name=name, labels=labels),
            spec=client.V1StatefulSetSpec(
                replicas=replicas, service_name=name, template=template,
                selector=client.V1LabelSelector(match_labels=labels))))

    def create_daemonset(self, name: str, namespace: Optional[str] = None,
                         image: str = DEFAULT_IMAGE) -> client.V1DaemonSet:
        """A DaemonSet as a user creates it (one pod per node, from its controller)."""
        labels, template = self._workload(name, image)
        return self.apps.create_namespaced_daemon_set(self._ns(namespace), client.V1DaemonSet(
            metadata=client.V1ObjectMeta(name=name, labels=labels),
            spec=client.V1DaemonSetSpec(
                template=template, selector=client.V1LabelSelector(match_labels=labels))))

    def _workload(self, name: str, image: str) -> Any:
        labels = {"app": name}
        return labels, client.V1PodTemplateSpec(metadata=client.V1ObjectMeta(labels=labels),
                                                spec=self._template_spec(image, None))

    def set_deployment_status(self, name: str, namespace: Optional[str] = None,
                              replicas: int = 1, ready: Optional[int] = None,
                              available: Optional[int] = None) -> client.V1Deployment:
        """Write the status a deployment controller would (status subresource)."""
        ready = replicas if ready is None else ready
        available = ready if available is None else available
        return self.apps.patch_namespaced_deployment_status(
            name, self._ns(namespace),
            {"status": {"observedGeneration": 1, "replicas": replicas,
                        "updatedReplicas": replicas, "readyReplicas": ready,
                        "availableReplicas": available,
                        "unavailableReplicas": max(replicas - available, 0) or None}},
        )

    def set_replicaset_status(self, name: str, namespace: Optional[str] = None,
                              replicas: int = 1, ready: Optional[int] = None,
                              available: Optional[int] = None) -> client.V1ReplicaSet:
        ready = replicas if ready is None else ready
        available = ready if available is None else available
        return self.apps.patch_namespaced_replica_set_status(
            name, self._ns(namespace),
            {"status": {"observedGeneration": 1, "replicas": replicas,
                        "fullyLabeledReplicas": replicas, "readyReplicas": ready,
                        "availableReplicas": available}},
        )

    def create_daemonset_pod(self, name: str, namespace: Optional[str] = None,
                             node: str = DEFAULT_NODE, **kwargs: Any) -> PodFamily:
        """DaemonSet ``name`` -> pod ``name-<id>`` on ``node`` (status: 1 scheduled, ready)."""
        ns = self._ns(namespace)
        labels = {"app": name}
        daemonset = self.apps.create_namespaced_daemon_set(
            ns,
            client.V1DaemonSet(
                metadata=client.V1ObjectMeta(name=name, labels=labels),
                spec=client.V1DaemonSetSpec(
                    selector=client.V1LabelSelector(match_labels=labels),
                    template=client.V1PodTemplateSpec(
                        metadata=client.V1ObjectMeta(labels=labels),
                        spec=self._template_spec(kwargs.get("image", DEFAULT_IMAGE), None),
                    ),
                ),
            ),
        )
        self.ensure_node(node)
        kwargs.setdefault("node_name", node)
        pod = self.create_pod(f"{name}-{_suffix()}", ns, labels=labels,
                              owners=[owner_reference(daemonset)], **kwargs)
        daemonset = self.apps.patch_namespaced_daemon_set_status(
            name, ns,
            {"status": {"observedGeneration": 1, "currentNumberScheduled": 1,
                        "desiredNumberScheduled": 1, "numberMisscheduled": 0,
                        "numberReady": 1, "numberAvailable": 1, "updatedNumberScheduled": 1}},
        )
        return PodFamily(pod, [daemonset])

    def create_statefulset_pod(self, name: str, namespace: Optional[str] = None,
                               replicas: int = 1, **kwargs: Any) -> PodFamily:
        """StatefulSet ``name`` -> pod ``name-0`` (status: ``replicas`` ready)."""
        ns = self._ns(namespace)
        labels = {"app": name}
        statefulset = self.apps.create_namespaced_stateful_set(
            ns,
            client.V1StatefulSet(
                metadata=client.V1ObjectMeta(name=name, labels=labels),
                spec=client.V1StatefulSetSpec(
                    replicas=replicas, service_name=name,
                    selector=client.V1LabelSelector(match_labels=labels),
                    template=client.V1PodTemplateSpec(
                        metadata=client.V1ObjectMeta(labels=labels),
                        spec=self._template_spec(kwargs.get("image", DEFAULT_IMAGE), None),
                    ),
                ),
            ),
        )
        pod = self.create_pod(
            f"{name}-0", ns,
            labels={**labels, "statefulset.kubernetes.io/pod-name": f"{name}-0"},
            owners=[owner_reference(statefulset)], **kwargs,
        )
        statefulset = self.apps.patch_namespaced_stateful_set_status(
            name, ns,
            {"status": {"observedGeneration": 1, "replicas": replicas,
                        "readyReplicas": replicas, "availableReplicas": replicas,
                        "currentReplicas": replicas, "updatedReplicas": replicas}},
        )
        return PodFamily(pod, [statefulset])

    def create_mirror_pod(self, name: str, namespace: Optional[str] = None,
                          node: str = DEFAULT_NODE, image: str = DEFAULT_IMAGE) -> PodFamily:
        """The mirror of static pod ``name`` on ``node``: pod ``name-<node>`` with the
        ``kubernetes.io/config.mirror`` annotation, owned by the Node, as a kubelet makes it.
        Mirror pods may not name a ServiceAccount, so none is set."""
        node_obj: Any = self.ensure_node(node)
        node_ref = client.V1OwnerReference(
            api_version="v1", kind="Node", name=node, uid=node_obj.metadata.uid, controller=True,
        )
        config_hash = secrets.token_hex(16)
        pod = self.create_pod(
            f"{name}-{node}", namespace, image=image, node_name=node,
            labels={"component": name, "tier": "control-plane"},
            annotations={MIRROR_ANNOTATION: config_hash,
                         "kubernetes.io/config.hash": config_hash,
                         "kubernetes.io/config.source": "file"},
            owners=[node_ref],
        )
        return PodFamily(pod, [node_obj])

    # -- observing -------------------------------------------------------------------------

    def read_pod(self, name: str, namespace: Optional[str] = None) -> Any:
        """The pod, or None when it is gone."""
        return or_none(lambda: self.core.read_namespaced_pod(name, self._ns(namespace)))
