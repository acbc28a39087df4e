"""The only module that talks to the Kubernetes API.

Reads return plain dicts (the pod's JSON), parsed with ``_preload_content=False``:
the client's model classes cost milliseconds per pod and the engine needs a handful of
fields. Every call has a timeout and bounded retries for failures a retry could fix
(connection errors, timeouts, 429, 5xx); API status codes become the typed errors of
:mod:`function.errors` here and nowhere else.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import urllib3
from kubernetes import client, config

from .deadline import clamp
from .errors import (
    AnswerLost,
    Conflict,
    DeadlineExceeded,
    KubeError,
    NotFound,
    OutcomeUnknown,
    SettingsError,
    TransientKubeError,
    kube_error,
)
from .kube_rest import Rest, path
from .metrics import METRICS
from .settings import Settings

log = logging.getLogger(__name__)

RETRYABLE = frozenset({429, 500, 502, 503, 504})
_WORKLOADS = {
    "ReplicaSet": "replicasets",
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "DaemonSet": "daemonsets",
}
_COORDINATION = "coordination.k8s.io"
_NETWORKING = "networking.k8s.io"


@dataclass(frozen=True)
class Retry:
    attempts: int = 3
    budget: float = 5.0
    timeout: float = 2.0
    first_delay: float = 0.1


def connect(settings: Settings) -> Tuple[Optional[Kube], str]:
    """One client per process: the in-cluster account, else a kubeconfig, else none."""
    if settings.cluster == "off":
        return None, "no cluster configured: FALCO_RESPONDER_CLUSTER=off"
    cfg = client.Configuration()
    in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
    path = ""
    if in_cluster:
        where = "in-cluster service account"
        load = lambda: config.load_incluster_config(client_configuration=cfg)  # noqa: E731
    else:
        named = next((p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p), "")
        path = named or os.path.expanduser("~/.kube/config")
        where = f"kubeconfig {path}"
        try:
            with open(path, "rb"):
                pass
        except FileNotFoundError:
            if not named:
                return None, "no cluster configured: no in-cluster account, no kubeconfig"
            # Named but missing is a mistake, not a wish for a dry run: pods would live on.
            raise SettingsError(f"cannot use the {where} (KUBECONFIG): no such file") from None
        except OSError as e:
            raise SettingsError(f"cannot use the {where}: {e.strerror or e}") from e
        load = lambda: config.load_kube_config(  # noqa: E731
            config_file=path, client_configuration=cfg)
    try:
        load()
    except Exception as e:  # the client raises ConfigException, OSError, ValueError, ...
        raise SettingsError(f"cannot use the {where}: {e}") from e
    # Our own retry loop is bounded in time; urllib3's would add unbounded waits to it.
    cfg.retries = False
    cfg.connection_pool_maxsize = 16
    retry = Retry(settings.kube_attempts, settings.kube_retry_budget, settings.kube_timeout)
    home = settings.pod_namespace or _account_namespace(path if not in_cluster else None)
    return Kube(client.ApiClient(cfg), retry, home), where


_IN_CLUSTER_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def _account_namespace(kubeconfig: Optional[str]) -> str:
    """The function's own namespace when POD_NAMESPACE is not set: the in-cluster
    account's, else the kubeconfig context's, else ``default``."""
    try:
        if kubeconfig is None:
            with open(_IN_CLUSTER_NAMESPACE, encoding="utf-8") as f:
                return f.read().strip() or "default"
        _, active = config.list_kube_config_contexts(config_file=kubeconfig)
        return str((active or {}).get("context", {}).get("namespace") or "default")
    except (OSError, ValueError, config.ConfigException):
        return "default"


class Kube:
    def __init__(self, api_client: Any, retry: Retry = Retry(),
                 namespace: str = "default") -> None:
        self.api_client = api_client
        self.retry = retry
        # The function's own namespace: where the shared guard state lives.
        self.namespace = namespace
        # Requests by path: the generated API classes cost 0.4-0.6 s of start-up.
        self.rest = Rest(api_client)
        # A forked child (Kubeless forks one per request) must not talk TLS over the
        # connections it inherited: the parent, or a sibling, uses the same sessions.
        os.register_at_fork(after_in_child=self._forget_connections)

    def _forget_connections(self) -> None:
        pools = getattr(getattr(self.api_client, "rest_client", None), "pool_manager", None)
        if pools is not None:
            pools.clear()

    # -- the retry loop ----------------------------------------------------------------

    def _call(self, what: str, method: Callable[..., Any], *args: Any,
              unsafe: bool = False, retryable: Callable[[Any], bool] = lambda e: True,
              **kwargs: Any) -> Any:
        """One API call with bounded retries, within the alert's deadline.

        ``unsafe``: the call changes something a second attempt must not change again
        (a delete, an eviction). When its answer is lost after the request went out, it is
        not retried blindly: :class:`AnswerLost` tells the caller to find out instead.
        ``retryable`` narrows which retryable statuses are retried for this call.
        """
        deadline = clamp(time.monotonic() + self.retry.budget)
        delay = self.retry.first_delay
        attempt = 0
        operation = "_".join(what.split()[:2])
        while True:
            left = deadline - time.monotonic()
            if left <= 0.01:
                raise DeadlineExceeded(f"{what}: not attempted, the alert's deadline passed"
                                       if attempt == 0 else
                                       f"{what}: the alert's deadline passed after "
                                       f"{attempt} attempt(s)")
            attempt += 1
            timeout = min(self.retry.timeout, left)
            started = time.perf_counter()
            try:
                # A (connect, read) pair: older clients silently ignore a bare float.
                response = method(*args, _request_timeout=(timeout, timeout),
                                  _preload_content=False, **kwargs)
                METRICS.kube_call(operation, time.perf_counter() - started)
                return json.loads(response.data) if response.data else None
            except client.ApiException as e:
                METRICS.kube_call(operation, time.perf_counter() - started)
                if e.status not in RETRYABLE or not retryable(e):
                    raise kube_error(e.status, f"{what}: {_reason(e)}") from e
                failure: Exception = e
                detail = f"{e.status} {_reason(e)}"
            except (urllib3.exceptions.HTTPError, OSError) as e:
                METRICS.kube_call(operation, time.perf_counter() - started)
                if unsafe and _answer_lost(e):
                    raise AnswerLost(f"{what}: sent, but its answer was lost "
                                     f"({type(e).__name__})") from e
                failure, detail = e, f"{type(e).__name__}: {e}"
            if attempt >= self.retry.attempts or time.monotonic() + delay >= deadline:
                raise TransientKubeError(
                    f"{what}: failed after {attempt} attempt(s): {detail}") from failure
            log.info("retrying %s after %s (attempt %d)", what, detail, attempt)
            time.sleep(delay)
            delay *= 3

    # -- reads -------------------------------------------------------------------------

    def get_pod(self, namespace: str, name: str) -> Optional[Dict[str, Any]]:
        return self._get(f"get pod {namespace}/{name}", self.rest.get,
                         path("namespaces", namespace, "pods", name))

    def get_namespace(self, name: str) -> Optional[Dict[str, Any]]:
        return self._get(f"get namespace {name}", self.rest.get, path("namespaces", name))

    def get_workload(self, kind: str, namespace: str, name: str) -> Optional[Dict[str, Any]]:
        return self._get(f"get {kind} {namespace}/{name}", self.rest.get,
                         path("namespaces", namespace, _WORKLOADS[kind], name, group="apps"))

    def list_pods(self, namespace: str, label_selector: str) -> List[Dict[str, Any]]:
        result = self._call(f"list pods {namespace} ({label_selector})", self.rest.get,
                            path("namespaces", namespace, "pods",
                                 query={"labelSelector": label_selector}))
        return list((result or {}).get("items") or [])

    def _get(self, what: str, method: Callable[..., Any], *args: Any) -> Optional[Dict[str, Any]]:
        try:
            result: Dict[str, Any] = self._call(what, method, *args)
            return result
        except NotFound:
            return None

    # -- writes ------------------------------------------------------------------------

    def delete_pod(self, namespace: str, name: str, uid: Optional[str],
                   grace_period_seconds: Optional[int]) -> str:
        """'deleted', 'confirmed' (its answer was lost; re-reading the pod showed it gone)
        or 'gone' (already). A UID mismatch raises Conflict."""
        body: Dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if uid:
            body["preconditions"] = {"uid": uid}
        if grace_period_seconds is not None:
            body["gracePeriodSeconds"] = grace_period_seconds
        what = f"delete pod {namespace}/{name}"
        return self._unsafe(what, namespace, name, uid, lambda: self._call(
            what, self.rest.delete, path("namespaces", namespace, "pods", name), body,
            unsafe=True),
            done="deleted")

    def evict_pod(self, namespace: str, name: str, uid: Optional[str],
                  grace_period_seconds: Optional[int]) -> Tuple[str, str]:
        """('evicted'|'confirmed'|'gone'|'blocked', detail). A PDB refusal is an answer,
        not an error."""
        options: Dict[str, Any] = {}
        if uid:
            options["preconditions"] = {"uid": uid}
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        body: Any = {"apiVersion": "policy/v1", "kind": "Eviction",
                     "metadata": {"name": name, "namespace": namespace},
                     "deleteOptions": options}
        what = f"evict pod {namespace}/{name}"
        try:
            # For evictions 429 may mean "a PodDisruptionBudget says no": not retried.
            return self._unsafe(what, namespace, name, uid, lambda: self._call(
                what, self.rest.post, path("namespaces", namespace, "pods", name, "eviction"),
                body, unsafe=True, retryable=lambda e: not _is_disruption_budget(e)),
                done="evicted"), ""
        except KubeError as e:
            if e.code == 429:
                return "blocked", e.message.split(": ", 2)[-1]
            raise

    def _unsafe(self, what: str, namespace: str, name: str, uid: Optional[str],
                send: Callable[[], Any], done: str) -> str:
        """Send a pod removal once; when its answer is lost, re-read the pod to learn what
        happened, and send again only if it did not (the UID precondition makes a second
        removal of a replacement impossible)."""
        while True:
            try:
                send()
                return done
            except NotFound:
                return "gone"
            except AnswerLost as lost:
                try:
                    pod = self.get_pod(namespace, name)
                except TransientKubeError as e:
                    raise OutcomeUnknown(f"{lost.message}; re-reading the pod failed too "
                                         f"({e.message}): outcome unknown") from e
                if pod is None or (uid and pod["metadata"].get("uid") != uid) \
                        or pod["metadata"].get("deletionTimestamp"):
                    log.warning("%s: answer lost, the pod is gone: it was done", what)
                    return "confirmed"
                log.warning("%s: answer lost, the pod is still there: sending again", what)

    def patch_pod_metadata(self, namespace: str, name: str, uid: Optional[str],
                           labels: Optional[Mapping[str, Optional[str]]] = None,
                           annotations: Optional[Mapping[str, Optional[str]]] = None) -> bool:
        """Merge-patch labels/annotations (None removes a key); False when the pod is gone."""
        metadata: Dict[str, Any] = {}
        if uid:
            # A UID in the patch is checked by the API server: a replacement pod is refused.
            metadata["uid"] = uid
        if labels:
            metadata["labels"] = dict(labels)
        if annotations:
            metadata["annotations"] = dict(annotations)
        try:
            self._call(f"patch pod {namespace}/{name}", self.rest.patch,
                       path("namespaces", namespace, "pods", name), {"metadata": metadata})
            return True
        except NotFound:
            return False
        except KubeError as e:
            # The API server refuses a UID change as 422 "field is immutable": another pod.
            if e.code == 422 and "metadata.uid" in e.message:
                raise Conflict(e.message, code=409) from e
            raise

    def apply_network_policy(self, namespace: str, body: Dict[str, Any]) -> str:
        name = body["metadata"]["name"]
        what = f"networkpolicy {namespace}/{name}"
        policies = ("namespaces", namespace, "networkpolicies")
        try:
            self._call(f"create {what}", self.rest.post, path(*policies, group=_NETWORKING),
                       body)
            return "created"
        except Conflict:
            # Replace, never patch: a patch would merge matchLabels and narrow the selector,
            # releasing the pods isolated under the old one.
            current = self._call(f"get {what}", self.rest.get,
                                 path(*policies, name, group=_NETWORKING))
            replacement = dict(body, metadata=dict(
                body["metadata"], resourceVersion=current["metadata"]["resourceVersion"]))
            self._call(f"replace {what}", self.rest.put,
                       path(*policies, name, group=_NETWORKING), replacement)
            return "updated"

    def create_event(self, namespace: str, pod: Mapping[str, Any], reason: str, message: str,
                     action: str, key: str) -> None:
        """One Event per ``key``: its name derives from it, so a retried create (after a
        timeout that did reach the server) finds it there instead of adding a second."""
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
        body = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{pod['name'][:200]}.falco-responder.{digest}",
                         "namespace": namespace},
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "namespace": namespace,
                               "name": pod["name"], "uid": pod.get("uid") or ""},
            "reason": reason, "message": message[:1024], "type": "Warning",
            "action": action,
            "source": {"component": "falco-responder"},
            "reportingComponent": "falco-responder",
            "reportingInstance": os.environ.get("POD_NAME") or "falco-responder",
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        }
        # A Conflict means recorded already, by an attempt whose answer was lost.
        with contextlib.suppress(Conflict):
            self._call(f"create event for pod {namespace}/{pod['name']}",
                       self.rest.post, path("namespaces", namespace, "events"), body)


    # -- the shared guard state (Leases in the function's own namespace) ------------------

    def _leases(self, *segments: str, query: Optional[Mapping[str, str]] = None) -> str:
        return path("namespaces", self.namespace, "leases", *segments, group=_COORDINATION,
                    query=query)

    def get_lease(self, name: str) -> Optional[Dict[str, Any]]:
        return self._get(f"get lease {name}", self.rest.get, self._leases(name))

    def create_lease(self, body: Dict[str, Any]) -> Dict[str, Any]:
        """Raises Conflict when it exists already."""
        result: Dict[str, Any] = self._call(
            f"create lease {body['metadata']['name']}", self.rest.post, self._leases(), body)
        return result

    def replace_lease(self, body: Dict[str, Any]) -> Dict[str, Any]:
        """Conditioned on ``metadata.resourceVersion``: raises Conflict when another
        writer changed it since it was read, NotFound when it was deleted."""
        name = body["metadata"]["name"]
        result: Dict[str, Any] = self._call(
            f"replace lease {name}", self.rest.put, self._leases(name), body)
        return result

    def delete_lease(self, name: str, resource_version: str) -> None:
        """Only the version read: a Lease another writer changed since stays."""
        body = {"apiVersion": "v1", "kind": "DeleteOptions",
                "preconditions": {"resourceVersion": resource_version}}
        with contextlib.suppress(NotFound, Conflict):
            self._call(f"delete lease {name}", self.rest.delete, self._leases(name), body)

    def list_leases(self, label_selector: str) -> Any:
        result = self._call("list leases", self.rest.get,
                            self._leases(query={"labelSelector": label_selector}))
        return (result or {}).get("items") or []

    # -- what this function may do --------------------------------------------------------

    def may(self, verb: str, group: str, resource: str, namespace: str = "") -> bool:
        """A SelfSubjectAccessReview: may this function's account do ``verb`` on
        ``resource`` in ``namespace`` ('' = every namespace)?"""
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": {"verb": verb, "group": group,
                                                "resource": resource,
                                                "namespace": namespace}}}
        review = self._call(f"review access {verb} {resource}", self.rest.post,
                            path("selfsubjectaccessreviews", group="authorization.k8s.io"),
                            body)
        return bool((review or {}).get("status", {}).get("allowed"))


def _answer_lost(e: BaseException) -> bool:
    """The request went out and no answer came: the server may have acted on it.
    A refused or timed-out connection never carried the request."""
    if isinstance(e, (urllib3.exceptions.NewConnectionError,
                      urllib3.exceptions.ConnectTimeoutError)):
        return False
    if isinstance(e, urllib3.exceptions.MaxRetryError):
        return e.reason is not None and _answer_lost(e.reason)
    return isinstance(e, (urllib3.exceptions.ReadTimeoutError,
                          urllib3.exceptions.ProtocolError, TimeoutError,
                          ConnectionResetError))


def _is_disruption_budget(e: Any) -> bool:
    """A 429 from the Eviction API is a PDB refusal only when it says so; API throttling
    answers 429 too, and that one a retry can fix."""
    try:
        status = json.loads(e.body)
    except (TypeError, ValueError):
        return False
    causes = (status.get("details") or {}).get("causes") or []
    if any(c.get("type") == "DisruptionBudget" for c in causes if isinstance(c, dict)):
        return True
    return "disruption budget" in str(status.get("message", "")).lower()


def _reason(e: Any) -> str:
    try:
        status = json.loads(e.body)
        return str(status.get("message") or e.reason)
    except (TypeError, ValueError, AttributeError):
        return str(getattr(e, "reason", "") or e)


__all__ = ["Kube", "KubeError", "Retry", "connect"]
